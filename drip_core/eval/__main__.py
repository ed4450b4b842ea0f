"""drip-eval: score an engine on a matting benchmark folder with the DIM metrics.

    drip-eval --data alphamatting_lowres [--trimap Trimap1|Trimap2|all]
    drip-eval --layout comp1k /data/Composition-1k-testset     (merged/ trimaps/ alpha/ fg/)
    drip-eval --layout aim500 /data/AIM-500                    (original/ trimap/ mask/)

Alpha: SAD, MSE, Grad, Conn at full resolution on the trimap's unknown region (DIM protocol).
Foreground, where the dataset has ground truth (Composition-1k): SAD and MSE of alpha_gt * F
on the unknown pixels with alpha_gt > 0 (DRIP / FBA; --fg-variant for the others).
"""
from __future__ import annotations

import argparse
import json
import sys

from .dataset import TRIMAPS, DatasetError
from .layouts import LAYOUTS, open_layout
from .metrics import FG_VARIANTS
from .runner import evaluate_layout, format_row, header, trimap_list


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="drip-eval", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("folder", nargs="?", help="dataset folder (or --data)")
    ap.add_argument("--data", help="dataset folder")
    ap.add_argument("--layout", default="alphamatting", choices=LAYOUTS)
    ap.add_argument("--engine", default="classical", help="engine name (classical, drip, auto)")
    ap.add_argument("--drip-model", help="DRIP model folder (default: the configured one)")
    ap.add_argument("--trimap", default="Trimap1", choices=[*TRIMAPS, "all"], help="alphamatting layout only")
    ap.add_argument("--fg-variant", default="drip", choices=FG_VARIANTS, help="foreground error protocol")
    ap.add_argument("--json", metavar="OUT.json", help="write per-image and mean figures here")
    ap.add_argument("--limit", type=int, help="only the first N images")
    return ap


def run(args) -> list[dict]:
    from ..engines import get_engine

    data = args.data or args.folder
    sets = trimap_list(args.trimap) if args.layout == "alphamatting" else [args.layout]
    layouts = [open_layout(args.layout, data, s) for s in sets]
    if not layouts[0].names():
        raise DatasetError(f"no images found in {data}")
    engine = (get_engine(args.engine, drip_model=args.drip_model) if args.drip_model
              else get_engine(args.engine))
    runs = []
    for label, layout in zip(sets, layouts):
        width = max([8, *(len(n) for n in layout.names()[:args.limit or None])])
        fg = bool(getattr(layout, "fgs", None))
        print(f"# engine {engine.name}, {label}")
        print(header(width, fg))
        run = evaluate_layout(layout, engine, args.limit, fg_variant=args.fg_variant, label=label,
                              on_row=lambda r, width=width: print(format_row(r, width), flush=True))
        print(format_row({"name": "mean", **run.mean()}, width))
        runs.append(run.as_dict())
    return runs


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ..engines import EngineError
    try:
        if not (args.data or args.folder):
            raise DatasetError("give the dataset folder (positional or --data)")
        runs = run(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"data": str(args.data or args.folder), "layout": args.layout,
                           "fg_variant": args.fg_variant, "runs": runs}, f, indent=1)
    except (DatasetError, EngineError, OSError) as exc:
        print(f"drip-eval: error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a tool, not a library: one line, no traceback
        print(f"drip-eval: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("drip-eval: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
