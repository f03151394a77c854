"""Tree ensembles read out of ONNX graphs, and their exact interventional Shapley values.

Framework-free: only numpy and onnx. ``graph`` reads the tree operators, ``preprocess``
follows the column-wise preprocessing in front of them and the nodes behind, ``margin`` turns
raw rows into scores and outputs (and offers the margin as a Model), ``interventional``
computes the exact values of the interventional game of the margin.
"""

from .margin import TreeFunction, TreeMarginModel, read_function

__all__ = ["TreeFunction", "TreeMarginModel", "read_function"]
