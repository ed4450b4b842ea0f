"""A job whose trimap the server builds from a selection is a new start, even on a cached image
(issue 23): it is solved in full, exactly as on a fresh server, and never bent towards the last
result; only a job that brings its own (painted) trimap is re-solved locally from that result."""
from __future__ import annotations

import numpy as np
from conftest import load_alphamatting

from drip_core.client import connect


def selection_case():
    """(image, a hard selection, a feathered one: partly selected where the trimap is unsure)."""
    image, tri, _ = load_alphamatting("GT05")
    image, tri = image[150:450, 100:500].copy(), tri[150:450, 100:500].copy()
    return image, np.where(tri >= 128, 255, 0).astype(np.uint8), tri


def matte(client, image, selection, source, band=8):
    return client.matte(image, selection, engine="classical", trimap_source=source, band_radius=band,
                        return_info=True)


def test_a_new_selection_source_on_a_cached_image_is_a_full_solve(server, server_factory):
    image, selection, feathered = selection_case()
    with connect(str(server.discovery), spawn=False) as c:
        matte(c, image, selection, "selection_band")
        _, alpha, info = matte(c, image, feathered, "feathered")
        sent = c.connection.image_sent
    assert not sent, "the image was cached: only the mask should travel"
    assert info["rerun"] == "full", info
    fresh = server_factory(sub="fresh")
    with connect(str(fresh.discovery), spawn=False) as c:
        _, alone, _ = matte(c, image, feathered, "feathered")
    assert np.array_equal(alpha, alone), "a feathered run after a band run differs from a fresh one"


def test_a_wider_band_on_a_cached_image_is_a_full_solve(server, server_factory):
    """The unknown region only grows: an engine alone could take it for an edit."""
    image, selection, _ = selection_case()
    with connect(str(server.discovery), spawn=False) as c:
        matte(c, image, selection, "selection_band", band=4)
        _, alpha, info = matte(c, image, selection, "selection_band", band=16)
    assert info["rerun"] == "full", info
    fresh = server_factory(sub="fresh")
    with connect(str(fresh.discovery), spawn=False) as c:
        _, alone, _ = matte(c, image, selection, "selection_band", band=16)
    assert np.array_equal(alpha, alone), "a band-16 run after a band-4 run differs from a fresh one"
