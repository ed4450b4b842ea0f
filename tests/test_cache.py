"""The server's image cache (issue 13): reruns send only the mask and reuse what did not change.

Unit tests of the LRU (eviction by bytes, token isolation) and a real server process: an
unchanged rerun, a changed layer of the same size, eviction, a restart between runs, the
cache switched off, and a local re-solve against a full solve of the edited trimap.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import ServerProcess, load_alphamatting

import drip_protocol as P
from drip_core.client import connect
from drip_core.server.job_cache import CachedImage, JobCache


def entry(nbytes: int) -> CachedImage:
    return CachedImage(np.zeros(nbytes, np.uint8), nbytes)


def test_lru_evicts_the_least_recently_used_by_bytes():
    cache = JobCache(100)
    for name in "abc":
        assert cache.put("tok", name, entry(30))
    assert cache.get("tok", "a") is not None      # a is now the most recent
    cache.put("tok", "d", entry(30))              # 120 > 100: b (least recent) goes
    assert cache.get("tok", "b") is None
    assert all(cache.get("tok", k) is not None for k in "acd")
    assert cache.stats()["bytes"] == 90 and cache.stats()["evictions"] == 1
    assert not cache.put("tok", "huge", entry(101))  # larger than the whole cache: not stored
    assert cache.stats()["entries"] == 3


def test_replacing_an_entry_counts_its_bytes_once():
    cache = JobCache(100)
    cache.put("tok", "a", entry(40))
    cache.put("tok", "a", entry(60))
    assert cache.stats() | {} == dict(cache.stats(), entries=1, bytes=60)


def test_entries_are_never_shared_across_tokens():
    cache = JobCache(1000)
    cache.put("token-one", "digest", entry(10))
    assert cache.get("token-two", "digest") is None
    assert cache.get("token-one", "digest") is not None


def test_a_disabled_cache_stores_nothing():
    cache = JobCache(0)
    assert not cache.enabled and not cache.put("tok", "a", entry(1))


def test_the_digest_covers_format_and_size():
    data = bytes(range(12)) * 4
    assert P.image_digest(data, "rgb8", 4, 4) != P.image_digest(data, "rgb8", 2, 8)
    assert P.image_digest(data, "rgb8", 4, 4) != P.image_digest(data, "rgb16", 2, 4)
    assert len(P.image_digest(data, "rgb8", 4, 4)) == P.DIGEST_CHARS


def small_case():
    image, tri, _ = load_alphamatting("GT05")
    return image[150:450, 100:500].copy(), tri[150:450, 100:500].copy()


def edit_case():
    """A whole photo: an edit's re-solved neighbourhood (local_resolve.REACH) is a small share of it."""
    image, tri, _ = load_alphamatting("GT05")
    return image, tri


def run(client, image, trimap):
    fg, alpha, info = client.matte(image, trimap, engine="classical", return_info=True)
    return fg, alpha, info, client.connection.image_sent


def status(client):
    return client.connection.request({"type": "status"})


def test_an_unchanged_rerun_sends_no_pixels_and_returns_the_cached_result(server):
    image, tri = small_case()
    with connect(str(server.discovery), spawn=False) as c:
        assert c.server_info["image_cache"] is True
        fg1, a1, info1, sent1 = run(c, image, tri)
        fg2, a2, info2, sent2 = run(c, image, tri)
        st = status(c)
    assert sent1 and info1["rerun"] == "full" and info1["image_sent"]
    assert not sent2 and info2["rerun"] == "unchanged" and not info2["image_sent"]
    assert np.array_equal(fg1, fg2) and np.array_equal(a1, a2)
    assert info2["seconds"] < info1["seconds"] / 5
    assert st["images_received"] == 1 and st["images_from_cache"] == 1


def test_a_changed_layer_of_the_same_size_is_sent_and_solved_in_full(server):
    image, tri = small_case()
    other = image.copy()
    other[10, 10, 0] ^= 1   # one sample differs: another digest
    with connect(str(server.discovery), spawn=False) as c:
        run(c, image, tri)
        _, a2, info2, sent2 = run(c, other, tri)
        st = status(c)
    assert sent2 and info2["rerun"] == "full"
    assert st["images_received"] == 2 and st["images_from_cache"] == 0


def test_an_evicted_image_is_sent_again(server_factory):
    srv = server_factory("--cache-mb", "1")   # 1 MB: two 400 x 300 jobs' images (480 kB each), no results
    image, tri = small_case()
    variants = [image.copy() for _ in range(3)]
    for k, v in enumerate(variants):
        v[0, 0, 0] = k
    with connect(str(srv.discovery), spawn=False) as c:
        for v in variants:                       # the third evicts the first
            run(c, v, tri)
        _, _, info, sent = run(c, variants[0], tri)
        st = status(c)
        _, _, info_kept, sent_kept = run(c, variants[2], tri)
    assert sent and info["rerun"] == "full"
    assert not sent_kept                         # still cached (without its result: it did not fit)
    assert st["image_cache"]["max_bytes"] == 1 << 20 and 0 < st["image_cache"]["bytes"] <= 1 << 20
    assert st["image_cache"]["evictions"] >= 1 and st["images_from_cache"] == 0


def test_a_server_restart_between_runs_falls_back_to_sending_the_pixels(tmp_path):
    image, tri = small_case()
    first = ServerProcess(tmp_path)
    try:
        with connect(str(first.discovery), spawn=False) as c:
            _, a1, _, _ = run(c, image, tri)
            _, _, info, sent = run(c, image, tri)
            assert not sent and info["rerun"] == "unchanged"
    finally:
        first.stop()
    second = ServerProcess(tmp_path)
    try:
        with connect(str(second.discovery), spawn=False) as c:
            _, a2, info, sent = run(c, image, tri)
            assert sent and info["rerun"] == "full"
            assert "not cached" in second.log.read_text()
    finally:
        second.stop()
    assert np.abs(a1.astype(int) - a2).max() <= 1


def test_with_the_cache_off_every_job_sends_its_pixels(server_factory):
    srv = server_factory("--cache-mb", "0")
    image, tri = small_case()
    with connect(str(srv.discovery), spawn=False) as c:
        assert c.server_info["image_cache"] is False
        run(c, image, tri)
        _, _, info, sent = run(c, image, tri)
    assert sent and info["rerun"] == "full"


def test_a_job_naming_an_unknown_digest_gets_image_not_cached_and_the_connection_stays_usable(server):
    image, tri = small_case()
    h, w = tri.shape
    job = {"type": "job", "id": "j1", "width": w, "height": h, "image_format": "rgb8", "mask_format": "y8",
           "engine": "classical", "image_digest": "0" * 64, "image_cached": True}
    with connect(str(server.discovery), spawn=False) as c:
        sock = c.connection.sock
        P.send_frame(sock, job, tri.tobytes())
        header, _ = P.recv_frame(sock, 0)
        assert header["type"] == "error" and header["code"] == "image_not_cached" and header["id"] == "j1"
        _, alpha, info, sent = run(c, image, tri)
    assert sent and info["rerun"] == "full"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_a_local_trimap_edit_re_solves_only_its_neighbourhood(server, dtype):
    """A brush edit across the band: the rerun sends no pixels, re-solves a box around the edit,
    keeps the previous result bit for bit elsewhere, and stays close to a full solve of the
    edited trimap (the v2 engine's K-to-U flow is not local, so a full solve moves a little
    everywhere; bench/refine_rerun.py prints the same figures on 27 megapixels)."""
    from drip_core.engines.classical.rerun import ALIGN, REACH
    from drip_core.engines.registry import get_engine
    from drip_core.samples import from_float, to_float
    image, tri = edit_case()
    image = from_float(to_float(image), dtype)      # the layer at 8, 16 bits or float: patches of every width
    full_scale = 255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1.0
    ys, xs = np.nonzero(tri == 128)
    cy, cx = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    yy, xx = np.ogrid[:tri.shape[0], :tri.shape[1]]
    edited = tri.copy()
    edited[(yy - cy) ** 2 + (xx - cx) ** 2 <= 15 ** 2] = 255
    with connect(str(server.discovery), spawn=False) as c:
        _, before, _, _ = run(c, image, tri)
        fg_after, after, info, sent = run(c, image, edited)
    assert not sent and info["rerun"] == "local"
    x, y, w, h = info["patch"]        # only the re-solved rectangle came back ...
    assert 0 < w * h < tri.size / 2
    # ... and a client holding nothing gets all of it
    with connect(str(server.discovery), spawn=False) as fresh:
        fg_full, alpha_full, info_full, _ = run(fresh, image, edited)
    assert "patch" not in info_full and info_full["rerun"] == "unchanged"
    assert np.array_equal(fg_full, fg_after) and np.array_equal(alpha_full, after)
    box = np.zeros(tri.shape, bool)
    r = REACH + ALIGN  # the neighbourhood starts and ends on the flow's grid of the job's region
    box[max(cy - 15 - r, 0):cy + 16 + r, max(cx - 15 - r, 0):cx + 16 + r] = True
    assert np.array_equal(after[~box], before[~box])          # reused as it was
    assert (after[edited == 255] == full_scale).all()
    after, before = after * (255 / full_scale), before * (255 / full_scale)   # in 1/255
    full = get_engine("classical").matte(image, edited, dtype=np.float32).alpha * 255
    diff = np.abs(after - full)
    assert diff.mean() <= 1.0, diff.mean()                     # the mean bound, over the layer
    # near the edit the rerun moved most of the way from the previous result to the full solve
    # (not all of it: the full solve's K-to-U flow and trimming search the whole region)
    moved = np.abs(before - full)[box].mean()
    assert diff[box].mean() <= 0.5 * moved, (diff[box].mean(), moved)


def test_an_edit_on_a_small_layer_is_re_solved_locally_from_the_cached_image(server):
    """Even where the edit's neighbourhood is most of the region, the rerun is local (still
    without the pixels): pixels beyond the reach of the edit keep their previous result exactly,
    and next to it the result follows the edit."""
    from scipy import ndimage

    from drip_core.engines.classical.rerun import REACH
    image, tri = small_case()
    ys, xs = np.nonzero(tri == 128)
    edited = tri.copy()
    cy, cx = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    edited[cy - 10:cy + 10, cx - 10:cx + 10] = 255
    with connect(str(server.discovery), spawn=False) as c:
        _, before, _, _ = run(c, image, tri)
        _, alpha, info, sent = run(c, image, edited)
    assert not sent and info["rerun"] == "local"
    far = ndimage.distance_transform_edt(edited == tri) > REACH
    assert far.any() and np.array_equal(alpha[far], before[far])
    assert (alpha[edited != tri] == 255).all()


def test_a_new_connection_holding_the_result_itself_gets_only_the_patch(server):
    """What the GIMP plug-in does (a new process per run, the result kept in its layers): it
    names the result its layers hold, and gets back only the re-solved rectangle; an unchanged
    rerun gets an empty patch; a stale id gets the whole result."""
    image, tri = edit_case()
    h, w = tri.shape
    job = {"id": "first", "width": w, "height": h, "image_format": "rgb8", "trimap_source": "trimap",
           "engine": "classical", "want_trimap": True}
    edited = tri.copy()
    ys, xs = np.nonzero(tri == 128)
    cy, cx = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    edited[cy - 10:cy + 10, cx - 10:cx + 10] = 255
    with connect(str(server.discovery), spawn=False) as c:
        first = c.connection.run_job(job, image.tobytes(), tri.tobytes())
    held = first["header"]["result_id"]
    with connect(str(server.discovery), spawn=False) as c:   # a new process: holds nothing itself
        rerun = c.connection.run_job(dict(job, id="rerun"), image.tobytes(), edited.tobytes(),
                                     held_result=held)
    assert rerun["header"]["rerun"] == "local" and not rerun["header"]["image_sent"]
    x, y, pw, ph = rerun["patch"]
    assert 0 < pw * ph < w * h / 2
    assert len(rerun["alpha"]) == pw * ph and len(rerun["foreground"]) == 3 * pw * ph
    # the whole result of the same job, for comparison
    with connect(str(server.discovery), spawn=False) as c:
        whole = c.connection.run_job(dict(job, id="whole"), image.tobytes(), edited.tobytes())
    alpha = np.frombuffer(whole["alpha"], np.uint8).reshape(h, w)
    assert np.array_equal(np.frombuffer(rerun["alpha"], np.uint8).reshape(ph, pw), alpha[y:y + ph, x:x + pw])
    assert np.array_equal(np.frombuffer(rerun["trimap"], np.uint8).reshape(ph, pw),
                          edited[y:y + ph, x:x + pw])
    with connect(str(server.discovery), spawn=False) as c:
        same = c.connection.run_job(dict(job, id="same"), image.tobytes(), edited.tobytes(),
                                    held_result=whole["header"]["result_id"])
        stale = c.connection.run_job(dict(job, id="stale"), image.tobytes(), edited.tobytes(),
                                     held_result=held)
    assert same["header"]["rerun"] == "unchanged" and same["patch"][2] * same["patch"][3] == 0
    assert "patch" not in stale and len(stale["alpha"]) == w * h
