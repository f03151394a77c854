"""Reading ``ai.onnx.ml`` tree ensembles out of an ONNX graph into one typed structure.

Three operators hold trees: ``TreeEnsembleRegressor`` and ``TreeEnsembleClassifier`` (opsets
1–3, every node a tuple of ``nodes_*`` attributes, leaves marked ``LEAF``, weights attached by
``(tree id, node id)``) and ``TreeEnsemble`` (ai.onnx.ml opset 5: interior nodes and leaves in
separate arrays, modes as a uint8 tensor, set membership). All three are read into one
:class:`Ensemble`: the nodes of every tree in one flat array, leaves carrying their weights per
target, so the evaluator and the Shapley algorithm never see which operator it came from.

Anything the reader does not understand (an unknown mode or aggregate, a weight on an interior
node, a child that does not exist) raises :class:`~surrogate_xai.exceptions.TreeGraphError`
naming the node: the trees are read exactly or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..exceptions import TreeGraphError

#: The operators that hold trees, by ONNX op type.
TREE_OPS = ("TreeEnsembleRegressor", "TreeEnsembleClassifier", "TreeEnsemble")

#: Split modes in the order of the opset-5 enumeration (the old operators name them).
MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")
MEMBER = 6
_POST = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
_AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")


@dataclass(frozen=True, eq=False)
class Ensemble:
    """The trees of one tree-ensemble node, flattened.

    Attributes
    ----------
    feature : int array of shape (n_nodes,)
        Column of the node's input tensor each interior node tests (-1 at leaves).
    threshold : float array of shape (n_nodes,)
    mode : int array of shape (n_nodes,)
        Index into :data:`MODES`, or :data:`MEMBER` for a set-membership test.
    members : tuple of float arrays
        The sets of the membership nodes; ``member_of[i]`` indexes it.
    member_of : int array of shape (n_nodes,)
    true_next, false_next : int arrays of shape (n_nodes,)
        Child followed when the test holds / fails (-1 at leaves).
    missing_true : bool array of shape (n_nodes,)
        A NaN input follows the true branch (else it is tested, and fails every test but
        ``BRANCH_NEQ``, as in onnxruntime).
    leaf_values : float array of shape (n_nodes, n_targets)
        What each leaf adds to each target (zero rows at interior nodes), already divided by
        the number of trees for an ``AVERAGE`` aggregate.
    is_leaf : bool array of shape (n_nodes,)
    roots : int array of shape (n_trees,)
    base_values : float array of shape (n_targets,)
    post_transform : str
        One of NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO, PROBIT.
    op_type : str
    n_inputs : int
        Width of the node's input tensor.
    input_dtype : numpy dtype
        The input's element type: values are compared in it, as onnxruntime does.
    class_labels : list of str, optional
        Classifier labels, in class-id order.
    n_base_values : int
        How many base values the node declared (the classifier's binary rules depend on it).
    weights_positive : bool
        Every leaf weight is >= 0 (the classifier's binary rules depend on it).
    class_ids : tuple of int
        Targets (classes) that some leaf contributes to.
    depth : int
        Longest root-to-leaf path, in interior nodes.
    """

    feature: np.ndarray
    threshold: np.ndarray
    mode: np.ndarray
    members: tuple[np.ndarray, ...]
    member_of: np.ndarray
    true_next: np.ndarray
    false_next: np.ndarray
    missing_true: np.ndarray
    leaf_values: np.ndarray
    is_leaf: np.ndarray
    roots: np.ndarray
    base_values: np.ndarray
    post_transform: str
    op_type: str
    n_inputs: int
    input_dtype: np.dtype
    class_labels: list[str] | None
    n_base_values: int
    weights_positive: bool
    class_ids: tuple[int, ...]
    depth: int

    @property
    def n_targets(self) -> int:
        return self.leaf_values.shape[1]

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def decisions(self, Z: np.ndarray) -> np.ndarray:
        """Which way each row goes at every node, shape ``(n_samples, n_nodes)`` (True: the
        true branch). Leaves, and nodes whose two children are the same, read True.

        ``Z`` holds the node's input columns, shape ``(n_samples, n_inputs)``.
        """
        Z = np.asarray(Z).astype(self.input_dtype).astype(np.float64)
        inner = np.flatnonzero(~self.is_leaf)
        out = np.ones((len(Z), len(self.feature)), dtype=bool)
        cond = self._holds(Z[:, self.feature[inner]], inner[None, :])
        cond[:, self.true_next[inner] == self.false_next[inner]] = True
        out[:, inner] = cond
        return out

    @cached_property
    def _modes(self) -> tuple[int, ...]:
        """The split modes the interior nodes use."""
        return tuple(int(m) for m in np.unique(self.mode[~self.is_leaf]))

    @cached_property
    def _tracks_missing(self) -> bool:
        return bool(self.missing_true.any())

    def _holds(self, v: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Whether values ``v`` pass the tests of ``nodes`` (same shapes, or broadcast)."""
        t, modes = self.threshold[nodes], self._modes
        with np.errstate(invalid="ignore"):
            if len(modes) == 1 and modes[0] != MEMBER:
                go = _COMPARE[modes[0]](v, t)
            else:
                mode = self.mode[nodes]
                go = np.zeros(np.broadcast_shapes(v.shape, t.shape), dtype=bool)
                for m in modes:
                    if m != MEMBER:
                        go |= (mode == m) & _COMPARE[m](v, t)
        if MEMBER in modes:
            member = np.broadcast_to(self.mode[nodes] == MEMBER, go.shape)
            where = np.nonzero(member)
            owner = np.broadcast_to(nodes, go.shape)[where]
            go[where] = [
                bool(np.isin(val, self.members[self.member_of[k]]))
                for val, k in zip(np.broadcast_to(v, go.shape)[where], owner, strict=True)
            ]
        if self._tracks_missing:
            go = go | (self.missing_true[nodes] & np.isnan(v))
        return np.asarray(go)

    def leaves(self, Z: np.ndarray, chunk: int = 16_384) -> np.ndarray:
        """The leaf each row reaches in each tree, shape ``(n_samples, n_trees)``."""
        Z = np.asarray(Z).astype(self.input_dtype).astype(np.float64)
        out = np.empty((len(Z), self.n_trees), dtype=np.intp)
        width = Z.shape[1]
        for start in range(0, len(Z), chunk):
            z = Z[start : start + chunk]
            flat_z = z.ravel()
            offset = np.repeat(np.arange(len(z)) * width, self.n_trees)
            node = np.tile(self.roots, len(z))
            for _ in range(self.depth):
                # Rows at a leaf stay there (their feature is -1: read any column, ignored).
                f = np.maximum(self.feature[node], 0)
                go = self._holds(flat_z[offset + f], node)
                nxt = np.where(go, self.true_next[node], self.false_next[node])
                node = np.where(self.is_leaf[node], node, nxt)
            out[start : start + chunk] = node.reshape(len(z), self.n_trees)
        return out

    def margins(self, Z: np.ndarray, targets: list[int] | None = None) -> np.ndarray:
        """Raw scores before the post-transform, shape ``(n_samples, n_targets)`` (or only
        the columns ``targets``)."""
        cols = list(range(self.n_targets)) if targets is None else targets
        leaf = self.leaves(Z)
        out = np.empty((len(leaf), len(cols)))
        for k, t in enumerate(cols):
            out[:, k] = self.base_values[t] + self.leaf_values[:, t][leaf].sum(axis=1)
        return out


_COMPARE = (
    np.less_equal,
    np.less,
    np.greater_equal,
    np.greater,
    np.equal,
    np.not_equal,
)


# -- reading the attributes ---------------------------------------------------------------


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    out: dict[str, Any] = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, onnx.TensorProto):
            value = onnx.numpy_helper.to_array(value)
        out[a.name] = value
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _floats(attrs: dict[str, Any], name: str) -> np.ndarray | None:
    """A float attribute, or its ``*_as_tensor`` twin (which keeps doubles double)."""
    if f"{name}_as_tensor" in attrs:
        return np.asarray(attrs[f"{name}_as_tensor"], dtype=np.float64).ravel()
    if name in attrs:
        return np.asarray(attrs[name], dtype=np.float32).astype(np.float64)
    return None


def _fail(node: Any, why: str) -> TreeGraphError:
    return TreeGraphError(f"tree node {node.name or node.op_type!r} ({node.op_type}): {why}")


def read_tree_node(node: Any, n_inputs: int, input_dtype: np.dtype) -> Ensemble:
    """The trees of one tree-ensemble ``NodeProto``.

    Raises
    ------
    TreeGraphError
        For a mode, aggregate or post-transform it does not know, or an inconsistent tree.
    """
    if node.op_type not in TREE_OPS:
        raise _fail(node, "not a tree-ensemble operator")
    attrs = _attributes(node)
    parts = _read_v5(node, attrs) if node.op_type == "TreeEnsemble" else _read_v1(node, attrs)
    return _assemble(node, attrs, n_inputs, np.dtype(input_dtype), *parts)


def _read_v1(node: Any, attrs: dict[str, Any]) -> tuple[Any, ...]:
    """Nodes and weights of TreeEnsembleRegressor / TreeEnsembleClassifier."""
    tree = np.asarray(attrs.get("nodes_treeids", []), dtype=np.int64)
    nid = np.asarray(attrs.get("nodes_nodeids", []), dtype=np.int64)
    n = len(tree)
    if n == 0 or len(nid) != n:
        raise _fail(node, "nodes_treeids / nodes_nodeids are missing or of different lengths")
    modes = [_text(m) for m in attrs.get("nodes_modes", [])]
    feature = np.asarray(attrs.get("nodes_featureids", []), dtype=np.int64)
    threshold = _floats(attrs, "nodes_values")
    threshold = np.zeros(n) if threshold is None else threshold
    true_ids = np.asarray(attrs.get("nodes_truenodeids", []), dtype=np.int64)
    false_ids = np.asarray(attrs.get("nodes_falsenodeids", []), dtype=np.int64)
    missing = np.asarray(attrs.get("nodes_missing_value_tracks_true", [0] * n), dtype=bool)
    if {len(modes), len(feature), len(threshold), len(true_ids), len(false_ids), len(missing)} != {
        n
    }:
        raise _fail(node, "the nodes_* attributes have different lengths")
    index = {(int(t), int(i)): k for k, (t, i) in enumerate(zip(tree, nid, strict=True))}
    if len(index) != n:
        raise _fail(node, "two nodes share a (tree id, node id)")
    is_leaf = np.array([m == "LEAF" for m in modes])
    mode = np.zeros(n, dtype=np.int64)
    for k, m in enumerate(modes):
        if m == "LEAF":
            continue
        if m not in MODES:
            raise _fail(node, f"node {k} has split mode {m!r}, which is not one of {MODES}")
        mode[k] = MODES.index(m)

    def child(ids: np.ndarray) -> np.ndarray:
        out = np.full(n, -1, dtype=np.int64)
        for k in np.flatnonzero(~is_leaf):
            key = (int(tree[k]), int(ids[k]))
            if key not in index:
                raise _fail(
                    node,
                    f"node {k} points to node id {ids[k]} of tree {tree[k]}, which does not exist",
                )
            out[k] = index[key]
        return out

    true_next, false_next = child(true_ids), child(false_ids)
    prefix = "class" if node.op_type == "TreeEnsembleClassifier" else "target"
    w_tree = np.asarray(attrs.get(f"{prefix}_treeids", []), dtype=np.int64)
    w_node = np.asarray(attrs.get(f"{prefix}_nodeids", []), dtype=np.int64)
    w_target = np.asarray(attrs.get(f"{prefix}_ids", []), dtype=np.int64)
    w_value = _floats(attrs, f"{prefix}_weights")
    w_value = np.zeros(0) if w_value is None else w_value
    if len({len(w_tree), len(w_node), len(w_target), len(w_value)}) != 1:
        raise _fail(node, f"the {prefix}_* attributes have different lengths")
    holder = np.empty(len(w_tree), dtype=np.int64)
    for j, key in enumerate(zip(w_tree.tolist(), w_node.tolist(), strict=True)):
        if key not in index:
            raise _fail(
                node, f"weight {j} is attached to tree {key[0]} node {key[1]}, which does not exist"
            )
        holder[j] = index[key]
    if len(holder) and not is_leaf[holder].all():
        raise _fail(node, "a weight is attached to an interior node")
    # A tree's root is its one node that is nobody's child.
    is_child = np.zeros(n, dtype=bool)
    is_child[true_next[true_next >= 0]] = True
    is_child[false_next[false_next >= 0]] = True
    roots = [int(np.flatnonzero((tree == t) & ~is_child)[0]) for t in dict.fromkeys(tree.tolist())]
    if any(((tree == tree[r]) & ~is_child).sum() != 1 for r in roots):
        raise _fail(node, "a tree has more than one root")
    labels = None
    if node.op_type == "TreeEnsembleClassifier":
        raw = attrs.get("classlabels_strings") or attrs.get("classlabels_int64s")
        if raw is None:
            raise _fail(node, "a classifier without class labels")
        labels = [_text(v) for v in raw]
        n_targets = len(labels)
        aggregate = "SUM"
    else:
        n_targets = int(attrs.get("n_targets", int(w_target.max(initial=0)) + 1))
        aggregate = _text(attrs.get("aggregate_function", "SUM"))
    post = _text(attrs.get("post_transform", "NONE"))
    return (
        feature,
        threshold,
        mode,
        (),
        np.full(n, -1),
        true_next,
        false_next,
        missing,
        is_leaf,
        np.array(roots, dtype=np.int64),
        holder,
        w_target,
        w_value,
        n_targets,
        aggregate,
        post,
        labels,
    )


def _read_v5(node: Any, attrs: dict[str, Any]) -> tuple[Any, ...]:
    """Nodes and leaves of the opset-5 ``TreeEnsemble``: interior nodes first, then leaves."""
    feature = np.asarray(attrs.get("nodes_featureids", []), dtype=np.int64)
    n_inner = len(feature)
    splits = np.asarray(attrs.get("nodes_splits", np.zeros(n_inner)), dtype=np.float64).ravel()
    modes = np.asarray(attrs.get("nodes_modes", np.zeros(n_inner)), dtype=np.int64).ravel()
    t_ids = np.asarray(attrs.get("nodes_truenodeids", []), dtype=np.int64)
    t_leaf = np.asarray(attrs.get("nodes_trueleafs", []), dtype=bool)
    f_ids = np.asarray(attrs.get("nodes_falsenodeids", []), dtype=np.int64)
    f_leaf = np.asarray(attrs.get("nodes_falseleafs", []), dtype=bool)
    missing = np.asarray(
        attrs.get("nodes_missing_value_tracks_true", np.zeros(n_inner)), dtype=bool
    ).ravel()
    weights = np.asarray(attrs.get("leaf_weights", []), dtype=np.float64).ravel()
    targets = np.asarray(attrs.get("leaf_targetids", []), dtype=np.int64)
    n_leaves = len(weights)
    lengths = {
        len(splits),
        len(modes),
        len(t_ids),
        len(t_leaf),
        len(f_ids),
        len(f_leaf),
        len(missing),
    }
    if n_inner == 0 or lengths != {n_inner} or len(targets) != n_leaves:
        raise _fail(node, "the nodes_* (or leaf_*) attributes have different lengths")
    bad = np.flatnonzero((modes < 0) | (modes > MEMBER))
    if len(bad):
        raise _fail(node, f"node {bad[0]} has split mode {modes[bad[0]]}, not one of 0..6")
    n = n_inner + n_leaves

    def child(ids: np.ndarray, leaf: np.ndarray) -> np.ndarray:
        limit = np.where(leaf, n_leaves, n_inner)
        if ((ids < 0) | (ids >= limit)).any():
            raise _fail(node, "a node points to a node or leaf that does not exist")
        return np.concatenate([np.where(leaf, n_inner + ids, ids), np.full(n_leaves, -1)])

    members: list[np.ndarray] = []
    member_of = np.full(n, -1, dtype=np.int64)
    member_nodes = np.flatnonzero(modes == MEMBER)
    if len(member_nodes):
        values = np.asarray(attrs.get("membership_values", []), dtype=np.float64).ravel()
        cuts = np.flatnonzero(np.isnan(values))
        sets = np.split(values, cuts)
        sets = [s[~np.isnan(s)] for s in sets]
        if values.size and np.isnan(values[-1]):
            sets = sets[:-1]
        if len(sets) != len(member_nodes):
            raise _fail(node, f"{len(member_nodes)} membership nodes but {len(sets)} sets")
        members = sets
        member_of[member_nodes] = np.arange(len(member_nodes))
    pad = np.zeros(n_leaves)
    aggregate = _AGGREGATES[int(attrs.get("aggregate_function", 1))]
    post = _POST[int(attrs.get("post_transform", 0))]
    return (
        np.concatenate([feature, np.full(n_leaves, -1)]),
        np.concatenate([splits, pad]),
        np.concatenate([modes, np.zeros(n_leaves, dtype=np.int64)]),
        tuple(members),
        member_of,
        child(t_ids, t_leaf),
        child(f_ids, f_leaf),
        np.concatenate([missing, np.zeros(n_leaves, dtype=bool)]),
        np.concatenate([np.zeros(n_inner, dtype=bool), np.ones(n_leaves, dtype=bool)]),
        np.asarray(attrs.get("tree_roots", []), dtype=np.int64),
        n_inner + np.arange(n_leaves),
        targets,
        weights,
        int(attrs.get("n_targets", int(targets.max(initial=0)) + 1)),
        aggregate,
        post,
        None,
    )


def _assemble(
    node: Any,
    attrs: dict[str, Any],
    n_inputs: int,
    input_dtype: np.dtype,
    feature: np.ndarray,
    threshold: np.ndarray,
    mode: np.ndarray,
    members: tuple[np.ndarray, ...],
    member_of: np.ndarray,
    true_next: np.ndarray,
    false_next: np.ndarray,
    missing: np.ndarray,
    is_leaf: np.ndarray,
    roots: np.ndarray,
    holder: np.ndarray,
    target: np.ndarray,
    value: np.ndarray,
    n_targets: int,
    aggregate: str,
    post: str,
    labels: list[str] | None,
) -> Ensemble:
    if aggregate not in ("SUM", "AVERAGE"):
        raise _fail(
            node,
            f"aggregate_function {aggregate} is not a sum over trees, so its "
            "Shapley values are not computed tree by tree",
        )
    if post not in _POST:
        raise _fail(node, f"post_transform {post!r} is not one of {_POST}")
    n = len(feature)
    if len(roots) == 0 or (roots < 0).any() or (roots >= n).any():
        raise _fail(node, "no tree roots, or a root that does not exist")
    inner = ~is_leaf
    if inner.any() and ((feature[inner] < 0) | (feature[inner] >= n_inputs)).any():
        raise _fail(node, f"a node tests a feature outside the input's {n_inputs} columns")
    if ((target < 0) | (target >= n_targets)).any():
        raise _fail(node, f"a leaf weight names a target outside 0..{n_targets - 1}")
    leaf_values = np.zeros((n, n_targets))
    np.add.at(leaf_values, (holder, target), value)
    if aggregate == "AVERAGE":
        leaf_values /= len(roots)
    base = _floats(attrs, "base_values")
    n_base = 0 if base is None else len(base)
    base_values = np.zeros(n_targets)
    if base is not None and n_base:
        if n_base == n_targets:
            base_values[:] = base
        elif n_base == 1:
            base_values[0] = base[0]
        else:
            raise _fail(node, f"{n_base} base values for {n_targets} targets")
    depth = _depth(roots, true_next, false_next, is_leaf, node)
    return Ensemble(
        feature=np.where(inner, feature, -1).astype(np.intp),
        threshold=threshold.astype(np.float64),
        mode=mode.astype(np.int8),
        members=members,
        member_of=member_of.astype(np.intp),
        true_next=true_next.astype(np.intp),
        false_next=false_next.astype(np.intp),
        missing_true=missing.astype(bool) & inner,
        leaf_values=leaf_values,
        is_leaf=is_leaf.astype(bool),
        roots=roots.astype(np.intp),
        base_values=base_values,
        post_transform=post,
        op_type=node.op_type,
        n_inputs=n_inputs,
        input_dtype=input_dtype,
        class_labels=labels,
        n_base_values=n_base,
        weights_positive=bool((value >= 0).all()),
        class_ids=tuple(sorted({int(t) for t in target.tolist()})),
        depth=depth,
    )


def _depth(
    roots: np.ndarray, true_next: np.ndarray, false_next: np.ndarray, is_leaf: np.ndarray, node: Any
) -> int:
    """Longest path, in interior nodes; refuses cycles (a graph onnxruntime would loop on)."""
    level = np.asarray(roots)
    depth = 0
    while True:
        level = level[~is_leaf[level]]
        if len(level) == 0:
            return depth
        depth += 1
        if depth > len(is_leaf):
            raise _fail(node, "the trees contain a cycle")
        level = np.unique(np.concatenate([true_next[level], false_next[level]]))
