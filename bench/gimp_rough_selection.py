"""What a photographer gets in real GIMP from a rough selection with default settings, before
(the old default: a fixed 12-px band) and after (the smart band): screenshots and whole-image
alpha SAD, through the real plug-in, the real server and the classical engine.

For each photo the rough selection is bench/rough_selection.py's simulated lasso (seed 0).
GIMP 3.2 runs as a GUI under Xvfb in the chroot built by tests/gimp/build_roots.sh (as root).

    PYTHONPATH=. .venv/bin/python bench/gimp_rough_selection.py [--photos demo GT04 GT24] [--docs]

"demo" is the generated scene (licence-clean): with --docs its before/after picture is written
to docs/images/gimp-rough-selection.png. The alphamatting photos (GT01..GT27, read from
../shared) may only be used for evaluation: their pictures go to --out, never into the project.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "gimp"))
import harness  # noqa: E402

from bench.rough_selection import rough_selection  # noqa: E402

RUNS = [  # (tag, label, the settings a person changed; everything else is the plug-in's default)
    ("before", "before: fixed 12-px band", {"smart-band": False, "band-radius": 12}),
    ("after", "after: smart band (default)", {}),
]


def photo_and_truth(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "demo":
        from drip_core.demo_scene import make_scene
        image, _, alpha, _ = make_scene()
        return image, np.rint(alpha * 255).astype(np.uint8)
    image = np.asarray(Image.open(harness.ALPHAMATTING / "input_training_lowres" / f"{name}.png")
                       .convert("RGB"))
    gt = np.asarray(Image.open(harness.ALPHAMATTING / "gt_training_lowres" / f"{name}.png").convert("L"))
    return image, gt


def picture(shot: Path, geom: Path) -> Image.Image:
    im = Image.open(shot).convert("RGB")
    if geom.exists():
        g = dict(line.split("=", 1) for line in geom.read_text().split() if "=" in line)
        x, y, w, h = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        im = im.crop((x, y, x + w, y + h))
    return im


def side_by_side(images: list[Image.Image], labels: list[str]) -> Image.Image:
    gap, band = 8, 22
    w = sum(im.width for im in images) + gap * (len(images) - 1)
    h = max(im.height for im in images) + band
    out = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(out)
    x = 0
    for im, label in zip(images, labels):
        out.paste(im, (x, band))
        draw.text((x + 6, 4), label, fill="black")
        x += im.width + gap
    return out


def run_photo(name: str, version: str, out: Path, seed: int) -> dict:
    image, gt = photo_and_truth(name)
    selection = rough_selection(gt, seed)
    with tempfile.TemporaryDirectory() as tmp:
        photo, mask = Path(tmp) / "photo.png", Path(tmp) / "mask.png"
        Image.fromarray(image).save(photo)
        Image.fromarray(selection).save(mask)
        res = harness.gui_session(version, {"runs": [{"tag": t, "args": a} for t, _, a in RUNS]},
                                  server_args=["--engine", "classical"], script="gimp_shots.py",
                                  files={"photo": str(photo), "mask": str(mask)}, timeout=600)
    if "exception" in res or "runs" not in res:
        raise SystemExit(f"GIMP {version} failed on {name}: {res.get('exception') or res['_output'][-3000:]}")
    session_out = Path(res["_out"])
    figures, shots = {}, []
    for tag, label, _ in RUNS:
        entry = res["runs"][tag]
        if entry["run"]["status"] != "success":
            raise SystemExit(f"{name} {tag}: {entry['run']}")
        x, y, w, h = entry["alpha_rect"]
        alpha = np.zeros(gt.shape, np.uint8)
        alpha[y:y + h, x:x + w] = np.frombuffer((session_out / f"alpha-{tag}.raw").read_bytes(),
                                                np.uint8).reshape(h, w)
        sad = float(np.abs(alpha.astype(np.float64) - gt).sum() / 255.0 / 1000.0)
        figures[tag] = {"sad": round(sad, 2), "seconds": entry["run"]["seconds"]}
        shots.append((picture(session_out / f"shot-{tag}.png", session_out / f"shot-{tag}.geom"),
                      f"{label} - SAD {sad:.2f}"))
    Image.fromarray(selection).save(out / f"{name}-selection.png")
    combined = side_by_side([s for s, _ in shots], [lab for _, lab in shots])
    combined.save(out / f"{name}-before-after.png")
    figures["picture"] = str(out / f"{name}-before-after.png")
    return figures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", nargs="+", default=["demo", "GT04", "GT24"])
    ap.add_argument("--version", default="3.2", choices=sorted(harness.VERSIONS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "drip-gimp-rough-selection")
    ap.add_argument("--docs", action="store_true", help="write the demo's picture into docs/images")
    args = ap.parse_args(argv)
    reason = harness.gui_skip_reason(args.version)
    if reason:
        raise SystemExit(f"cannot run GIMP {args.version}: {reason}")
    args.out.mkdir(parents=True, exist_ok=True)
    table = {}
    for name in args.photos:
        table[name] = run_photo(name, args.version, args.out, args.seed)
        print(f"{name}: before (band 12) SAD {table[name]['before']['sad']:.2f} "
              f"in {table[name]['before']['seconds']} s"
              f" | after (smart band) SAD {table[name]['after']['sad']:.2f} "
              f"in {table[name]['after']['seconds']} s"
              f" | {table[name]['picture']}", flush=True)
        if name == "demo" and args.docs:
            target = REPO / "docs" / "images" / "gimp-rough-selection.png"
            Image.open(table[name]["picture"]).quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
                target, optimize=True)
            print(f"  -> {target.relative_to(REPO)}")
    (args.out / "figures.json").write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
