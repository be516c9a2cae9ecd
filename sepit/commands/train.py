"""``sepit train``: one SEPIT stage from a preset or YAML config, with dotted overrides."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train stage 0, 1 or 2",
        description="Train one SEPIT stage. Stage 0 warms up the encoder, stage 1 tunes on captions, stage 2 "
                    "upcycles the LLM to a mixture of experts and tunes on open/closed questions. Each stage "
                    "starts from the previous stage's <output_dir>/stage<N-1>/model folder. Extra arguments "
                    "--key.sub VALUE (or key.sub=VALUE) override config entries, e.g. --stage1.optim.lr 3e-4.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--stage", type=int, choices=(0, 1, 2), default=None,
                   help="which stage to train (required unless --print-config)")
    p.add_argument("--config", default=None,
                   help="required: preset name (debug, demo, paper) or a YAML file; fields: docs/configuration.md")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (preset/file + overrides) as YAML and exit")
    p.add_argument("--data", default=None, help="built dataset folder (sets `dataset`)")
    p.add_argument("--output-dir", default=None, help="run folder (sets `output_dir`)")
    p.add_argument("--init-from", default=None,
                   help="model folder to start from instead of the previous stage's output; for stage 1, "
                        "'none' skips stage 0 (encoder from encoder.pretrained or random)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of this stage")
    p.add_argument("--overwrite", action="store_true", help="delete this stage's previous output first")
    p.set_defaults(func=run, accepts_overrides=True)


def overrides_from(extra: list[str]) -> list[str]:
    """``['--a.b', '3', 'c.d=4', '--e=5']`` -> ``['a.b=3', 'c.d=4', 'e=5']``."""
    from sepit.errors import ConfigError

    out, i = [], 0
    while i < len(extra):
        item = extra[i].lstrip("-")
        if "=" in item:
            out.append(item)
            i += 1
        elif i + 1 < len(extra):
            out.append(f"{item}={extra[i + 1]}")
            i += 2
        else:
            raise ConfigError(f"override {extra[i]!r} has no value")
    return out


def run(args) -> int:
    from sepit.errors import ConfigError
    from sepit.train.config import PRESETS, load_train_config
    from sepit.train.run import train_stage

    if not args.config:
        raise ConfigError(f"--config is required: a preset ({', '.join(PRESETS)}) or a YAML file "
                          "(fields and defaults: docs/configuration.md)")
    overrides = overrides_from(args.extra)
    if args.data:
        overrides.append(f"dataset={args.data}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    cfg = load_train_config(args.config, overrides)
    if args.print_config:
        import yaml

        from sepit.config import to_dict

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    if args.stage is None:
        raise ConfigError("--stage is required (0, 1 or 2)")
    folder = train_stage(cfg, args.stage, resume=args.resume, overwrite=args.overwrite,
                         init_from=args.init_from)
    print(f"stage {args.stage} model: {folder}")
    return 0
