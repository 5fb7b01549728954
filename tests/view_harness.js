// Runs kioku view's page script (view.js) under Node with a minimal stand-in for the DOM, so
// that tests without a browser still execute every line the page runs when it opens and when
// a cell is picked. Usage: node view_harness.js PAYLOAD.json view.js ACTIONS.js
// ACTIONS.js is evaluated after the page script, in the same global scope (it may call
// pick(...), read tokenSpans, groups, ...), and its value is printed as JSON.
"use strict";
const fs = require("fs");
const vm = require("vm");
const [payloadPath, scriptPath, actionsPath] = process.argv.slice(2);

class ClassList {
  constructor() { this.names = new Set(); }
  add(...names) { names.forEach((n) => this.names.add(n)); }
  remove(...names) { names.forEach((n) => this.names.delete(n)); }
  toggle(name, on) {
    const want = on === undefined ? !this.names.has(name) : Boolean(on);
    if (want) this.names.add(name); else this.names.delete(name);
    return want;
  }
  contains(name) { return this.names.has(name); }
}

class Element {
  constructor(tag) {
    this.tagName = tag;
    this.children = [];
    this.style = {};
    this.dataset = {};
    this.classList = new ClassList();
    this.own = "";
    this.parts = {};  // what querySelector finds inside markup set through innerHTML
    this.options = [];
    this.value = "";
    this.title = "";
  }
  get textContent() {
    return this.own + this.children.map((c) => (typeof c === "string" ? c : c.textContent)).join("");
  }
  set textContent(text) { this.own = String(text); this.children = []; }
  set innerHTML(markup) { this.parts = {}; }
  appendChild(child) { this.children.push(child); return child; }
  append(...children) { children.forEach((c) => this.appendChild(c)); }
  addEventListener() {}
  querySelector(selector) { return (this.parts[selector] ||= new Element(selector)); }
  closest() { return null; }
  scrollIntoView() {}
  add(option) { this.options.push(option); }
}

const payload = fs.readFileSync(payloadPath, "utf8");
const byId = {};
globalThis.Option = class { constructor(text, value) { this.text = text; this.value = value; } };
globalThis.document = {
  getElementById: (id) => (id === "kioku-data" ? {textContent: payload} : (byId[id] ||= new Element(id))),
  createElement: (tag) => new Element(tag),
  createTextNode: (text) => String(text),
  addEventListener() {},
  body: new Element("body"),
  title: "",
};
globalThis.byId = byId;
vm.runInThisContext(fs.readFileSync(scriptPath, "utf8"), {filename: "view.js"});
const result = vm.runInThisContext(fs.readFileSync(actionsPath, "utf8"), {filename: "actions.js"});
process.stdout.write(JSON.stringify(result));
