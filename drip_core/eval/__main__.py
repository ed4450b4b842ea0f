"""drip-eval: score an engine on an alphamatting.com-style folder with the DIM metrics."""
from __future__ import annotations

import argparse
import json
import sys

from .dataset import TRIMAPS, DatasetError, sample_names
from .runner import HEADER, evaluate, format_row, trimap_list


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="drip-eval", description=__doc__)
    ap.add_argument("--data", required=True, help="folder with input_*/, trimap_*/TrimapK/ and gt_*/")
    ap.add_argument("--engine", default="classical", help="engine name (classical, drip, auto)")
    ap.add_argument("--trimap", default="Trimap1", choices=[*TRIMAPS, "all"])
    ap.add_argument("--json", metavar="OUT.json", help="write per-image and mean figures here")
    ap.add_argument("--limit", type=int, help="only the first N images")
    args = ap.parse_args(argv)

    from ..engines import EngineError, get_engine
    try:
        if not sample_names(args.data):
            raise DatasetError(f"no images found in {args.data}")
        engine = get_engine(args.engine)
        runs = []
        for trimap in trimap_list(args.trimap):
            print(f"# engine {engine.name}, {trimap}")
            print(HEADER)
            run = evaluate(args.data, engine, trimap, args.limit, on_row=lambda r: print(format_row(r), flush=True))
            print(format_row({"name": "mean", **run.mean()}))
            runs.append(run.as_dict())
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"data": str(args.data), "runs": runs}, f, indent=1)
    except (DatasetError, EngineError, OSError) as exc:
        print(f"drip-eval: error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a tool, not a library: one line, no traceback
        print(f"drip-eval: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("drip-eval: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
