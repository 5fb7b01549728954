"""Worked solutions to the course's exercises, one module per notebook
(``NN_name.py`` beside ``notebooks/src/NN_name.py``), each exercise a function
``exercise_1()``, ``exercise_2()``, ... that computes its answer and returns it. The
notebooks say where each solution is; the tests check every answer another way.

The module names start with a digit, as the notebooks do: load one with
``importlib.import_module("solutions.00_vanishing_gradient")`` from ``notebooks/``.
"""
