"""Feature groups for images and sequences: names follow a C-order flatten, groups partition them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import surrogate_xai as sx
from surrogate_xai import groups
from surrogate_xai.exceptions import ConfigurationError
from surrogate_xai.tabular import resolve_groups


def test_image_names_follow_a_c_order_flatten():
    names = groups.image_feature_names((3, 4))
    assert len(names) == 12
    for i, name in enumerate(names):
        r, c = np.unravel_index(i, (3, 4))
        assert name == f"p{r}_{c}"
    chw = groups.image_feature_names((2, 3, 4))
    for i, name in enumerate(chw):
        k, r, c = np.unravel_index(i, (2, 3, 4))
        assert name == f"c{k}_p{r}_{c}"
    hwc = groups.image_feature_names((3, 4, 2), layout="hwc")
    for i, name in enumerate(hwc):
        r, c, k = np.unravel_index(i, (3, 4, 2))
        assert name == f"c{k}_p{r}_{c}"
    assert sorted(hwc) == sorted(chw)  # same pixels, another order


def test_patches_of_a_digit_image():
    patches = groups.image_patches((8, 8), 2)
    assert list(patches) == [f"patch{i}_{j}" for i in range(4) for j in range(4)]
    assert patches["patch0_0"] == ["p0_0", "p0_1", "p1_0", "p1_1"]
    assert patches["patch3_2"] == ["p6_4", "p6_5", "p7_4", "p7_5"]
    # The explainers' units are the patches, in row-major patch order.
    units, index = resolve_groups(groups.image_feature_names((8, 8)), patches)
    assert units == list(patches)
    expected = np.arange(16).reshape(4, 4).repeat(2, axis=0).repeat(2, axis=1)
    np.testing.assert_array_equal(index.reshape(8, 8), expected)


def test_ragged_rectangular_and_multichannel_patches():
    ragged = groups.image_patches((5, 7), 2)
    assert len(ragged) == 3 * 4
    assert ragged["patch2_3"] == ["p4_6"]  # the corner left over
    assert ragged["patch0_3"] == ["p0_6", "p1_6"]
    rect = groups.image_patches((4, 8), (2, 4))
    assert list(rect) == ["patch0_0", "patch0_1", "patch1_0", "patch1_1"]
    assert len(rect["patch1_1"]) == 8
    rgb = groups.image_patches((3, 4, 4), 2)
    assert len(rgb) == 4
    assert rgb["patch0_0"][:4] == ["c0_p0_0", "c0_p0_1", "c0_p1_0", "c0_p1_1"]
    assert len(rgb["patch0_0"]) == 12  # every channel of the patch's pixels
    rgb_last = groups.image_patches((4, 4, 3), 2, layout="hwc")
    assert {k: sorted(v) for k, v in rgb_last.items()} == {k: sorted(v) for k, v in rgb.items()}


@settings(max_examples=60, deadline=None)
@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 9), st.integers(1, 9)),
        st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
    ),
    patch=st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5), st.integers(1, 5))),
    layout=st.sampled_from(["chw", "hwc"]),
)
def test_patches_partition_the_pixels(shape, patch, layout):
    names = groups.image_feature_names(shape, layout=layout)
    patches = groups.image_patches(shape, patch, layout=layout)
    members = [m for g in patches.values() for m in g]
    assert sorted(members) == sorted(names)
    assert len(members) == len(set(members))
    units, _ = resolve_groups(names, patches)
    assert sorted(units) == sorted(patches)


def test_patch_grid_places_values_by_name():
    patches = groups.image_patches((8, 8), 2)
    names = list(patches)
    values = np.arange(16.0)
    grid = groups.patch_grid(values, names, (8, 8), 2)
    np.testing.assert_array_equal(grid, values.reshape(4, 4))
    order = np.random.default_rng(0).permutation(16)
    shuffled = groups.patch_grid(values[order], [names[i] for i in order], (8, 8), 2)
    np.testing.assert_array_equal(shuffled, grid)
    partial = groups.patch_grid([1.0, 5.0], ["patch0_0", "age"], (8, 8), 2)
    assert partial[0, 0] == 1.0
    assert np.isnan(partial).sum() == 15  # "age" is no patch: ignored
    with pytest.raises(ConfigurationError, match="one entry per name"):
        groups.patch_grid(values[:3], names, (8, 8), 2)
    with pytest.raises(ConfigurationError, match="outside"):
        groups.patch_grid([1.0], ["patch4_0"], (8, 8), 2)


def test_sequence_names_and_time_steps():
    names = groups.sequence_feature_names(4, 3)
    for i, name in enumerate(names):
        s, f = np.unravel_index(i, (4, 3))
        assert name == f"t{s}_f{f}"
    steps = groups.time_steps(4, 3)
    assert list(steps) == ["t0", "t1", "t2", "t3"]
    assert steps["t2"] == ["t2_f0", "t2_f1", "t2_f2"]
    assert groups.sequence_feature_names(2, ["price", "volume"]) == [
        "t0_price",
        "t0_volume",
        "t1_price",
        "t1_volume",
    ]
    windows = groups.time_steps(10, ["x"], window=3)
    assert list(windows) == ["t0-2", "t3-5", "t6-8", "t9"]
    assert windows["t3-5"] == ["t3_x", "t4_x", "t5_x"]
    units, index = resolve_groups(groups.sequence_feature_names(10, ["x"]), windows)
    assert units == list(windows)
    np.testing.assert_array_equal(index, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: groups.image_feature_names((8,)), "image shape"),
        (lambda: groups.image_feature_names((0, 8)), "image shape"),
        (lambda: groups.image_feature_names((2, 8, 8, 1)), "image shape"),
        (lambda: groups.image_feature_names((8, 8.0)), "image shape"),
        (lambda: groups.image_feature_names((1, 8, 8), layout="nhwc"), "layout"),
        (lambda: groups.image_patches((8, 8), 0), "patch"),
        (lambda: groups.image_patches((8, 8), (2, 2, 2)), "patch"),
        (lambda: groups.sequence_feature_names(0, 2), "n_steps"),
        (lambda: groups.sequence_feature_names(3, 0), "features"),
        (lambda: groups.sequence_feature_names(3, "ab"), "features"),
        (lambda: groups.sequence_feature_names(3, ["a", "a"]), "distinct"),
        (lambda: groups.time_steps(3, 2, window=0), "window"),
    ],
)
def test_bad_arguments_are_refused(call, match):
    with pytest.raises(ConfigurationError, match=match):
        call()


def test_groups_drive_an_explainer_to_per_patch_and_per_step_values():
    """A linear model's exact Shapley value of a group is Σ_j w_j (x_j − E[x_j])."""
    names = groups.image_feature_names((4, 4))
    patches = groups.image_patches((4, 4), 2)
    w = np.random.default_rng(1).normal(size=16)
    model = sx.FunctionModel(lambda X: X @ w, names, input_type="array")
    rng = np.random.default_rng(2)
    background, X = rng.normal(size=(8, 16)), rng.normal(size=(3, 16))
    exp = sx.ExactSHAP().fit(model, background, feature_groups=patches).explain(X)
    assert exp.feature_names == list(patches)
    _, index = resolve_groups(names, patches)
    contrib = w * (X - background.mean(axis=0))
    expected = np.stack([contrib[:, index == g].sum(axis=1) for g in range(4)], axis=1)
    np.testing.assert_allclose(exp.values[:, :, 0], expected, atol=1e-10)

    seq_names = groups.sequence_feature_names(5, 2)
    only_step_3 = sx.FunctionModel(lambda X: 2 * X[:, 6], seq_names, input_type="array")
    S = rng.normal(size=(3, 10))
    seq = sx.ExactSHAP().fit(
        only_step_3, background=rng.normal(size=(8, 10)), feature_groups=groups.time_steps(5, 2)
    )
    values = seq.explain(S).values[:, :, 0]
    assert seq_names[6] == "t3_f0"
    np.testing.assert_allclose(values[:, [0, 1, 2, 4]], 0.0, atol=1e-12)
    assert np.all(np.abs(values[:, 3]) > 0)


def test_pixel_attributions_spread_each_patch_over_its_pixels():
    from tests.deep_cases import IMAGE, PATCH, image_explanation

    exp = image_explanation()
    members = exp.provenance.feature_groups
    grid = groups.pixel_attributions(exp.values[0, :, 0], exp.feature_names, members)
    assert grid.shape == IMAGE
    patch = groups.patch_grid(exp.values[0, :, 0], exp.feature_names, IMAGE, PATCH)
    np.testing.assert_array_equal(grid, np.kron(patch, np.ones((PATCH, PATCH))))
    image = groups.image_of(exp.data.iloc[0].to_dict(), IMAGE)
    np.testing.assert_array_equal(image.ravel(), exp.data.iloc[0].to_numpy())
    assert groups.pixel_attributions([1.0], ["age"], {}) is None


def test_channels_and_prefixed_inputs_are_read_back():
    names = groups.image_feature_names((2, 3, 3))
    grid = groups.pixel_attributions(np.arange(18.0), names, {})
    np.testing.assert_array_equal(grid, np.arange(9.0).reshape(3, 3) * 2 + 9)  # channels add
    prefixed = [f"image.{n}" for n in groups.image_feature_names((2, 2))]
    assert groups.pixel_attributions([1.0] * 4, prefixed, {}).shape == (2, 2)


def test_step_units_in_time_order():
    names = groups.sequence_feature_names(12, 2)
    assert [label for label, _ in groups.step_units(names, {})] == [f"t{s}" for s in range(12)]
    windows = groups.time_steps(12, 2, window=5)
    found = groups.step_units(list(windows), windows)
    assert [label for label, _ in found] == ["t0-4", "t5-9", "t10-11"]
    assert groups.step_units(["age"], {}) is None
