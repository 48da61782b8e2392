"""The `fer` command: tools that sit beside the DVC pipeline."""

import argparse
import os
import sys
import time
from pathlib import Path

from fer.core.errors import FerError, one_line_errors
from fer.core.params import PARAMS_FILE, load_params
from fer.core.paths import PATHS


def _bench(args) -> None:
    import numpy as np
    import torch

    from fer.data.sources.synthetic import generate
    from fer.tools.bench import bench_model, markdown

    params = load_params(args.params)
    names = args.models or list(params.models)
    unknown = [n for n in names if n not in params.models]
    if unknown:
        raise FerError(f"--models: unknown {unknown[0]!r}; valid names: {', '.join(params.models)}")
    if args.batch_size < 2:
        raise FerError(f"--batch-size: {args.batch_size}; expected at least 2 (BatchNorm needs two images)")
    if args.images < args.batch_size:
        # the baseline's DataLoader drops an incomplete last batch, so it would wait for a full one for ever
        raise FerError(f"--images: {args.images}; expected at least one batch (--batch-size {args.batch_size})")
    data = generate(args.images, 48, 0, photo=False)
    images, labels = np.stack(data.images), data.labels
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CUDA: "
        f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}; "
        f"load average before: {_load_average()}",
        flush=True,
    )
    rows = []
    for name in names:
        cfg = params.train_config(name).model_copy(update={"device": args.device, "batch_size": args.batch_size})
        rows.append(
            bench_model(
                name,
                params.models[name],
                cfg,
                images,
                labels,
                args.images,
                args.workers,
                args.repeats,
                args.min_seconds,
            )
        )
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    table = markdown(rows) + (
        f"\n{args.repeats} interleaved pairs per model, median (min-max); load average "
        f"after: {_load_average()} (other processes on the machine show up here)\n"
    )
    if args.stages:
        table += "\n" + _stage_times()
    print(table)
    if args.out:
        Path(args.out).write_text(table)


def _load_average() -> str:
    import os

    return ", ".join(f"{load:.1f}" for load in os.getloadavg())


def _stage_times() -> str:
    """Wall time of each stage of the current pipeline, forced to run alone (the upstream outputs must exist),
    beside the start-up of its script (`python stages/<x>.py --help`: the interpreter and the top-level
    imports, which every run pays before any work)."""
    import subprocess

    from fer.tools.dvc_cli import run_dvc

    startup: dict[str, float] = {}
    lines = ["| stage | wall s | script start-up s |", "|---|---:|---:|"]
    for stage in run_dvc("stage", "list", "--name-only").split():
        start = time.perf_counter()
        run_dvc("repro", "--force", "--single-item", stage)
        wall = time.perf_counter() - start
        script = f"stages/{stage.split('@')[0].removesuffix('_tuned')}.py"  # train@cnn, evaluate_tuned, ...
        if script not in startup:
            start = time.perf_counter()
            subprocess.run([sys.executable, script, "--help"], capture_output=True, check=True)
            startup[script] = time.perf_counter() - start
        lines.append(f"| {stage} | {wall:.1f} | {startup[script]:.1f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def _bench_faces(args) -> None:
    import torch

    from fer.tools.bench_faces import bench_drawn_photos, bench_faces, markdown

    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, min_face {params.align.min_face} px, "
        f"min_face_fraction {params.predict.min_face_fraction}; load average before: {_load_average()}",
        flush=True,
    )
    if args.photos:
        print(markdown(bench_drawn_photos(params.align, args.photos, args.photo_repeats)), flush=True)
    print(markdown(bench_faces(params.align.min_face, params.predict.min_face_fraction, args.repeats)))
    print(f"load average after: {_load_average()} (other processes on the machine show up here)")


def _bench_data(args) -> None:
    from fer.tools.bench_data import bench_data, markdown

    if args.scale <= 0:
        raise FerError(f"--scale: {args.scale}; expected a share of the full sizes above 0 (1 = full size)")
    if args.root.exists() and any(args.root.iterdir()):
        raise FerError(
            f"--root: {args.root} is not empty; expected a new folder for the stand-ins (several GB at full size)"
        )
    print(f"{os.cpu_count()} CPUs; load average before: {_load_average()}", flush=True)
    print(markdown(bench_data(args.root, args.scale, tuple(args.only))))
    print(f"load average after: {_load_average()} (other processes on the machine show up here)")


def _report(args) -> None:
    from fer.tools.report import DEFAULT_PLOTS, build_report, render_plots

    if not (Path(args.repo) / ".dvc").is_dir():
        raise FerError(f"--repo: {args.repo} is not a DVC repository (no .dvc folder in it)")
    if args.render_plots and Path(args.render_plots).exists() and not Path(args.render_plots).is_dir():
        raise FerError(f"--render-plots: {args.render_plots} is a file; expected a folder for the PNG files")
    plots = list(args.plot)
    if args.render_plots:
        rendered = render_plots(args.rev, args.render_plots, args.plots or DEFAULT_PLOTS, args.repo)
        if not rendered:
            raise FerError(
                f"--plots: no DVC plot matches {' '.join(args.plots or DEFAULT_PLOTS)}; list the plot ids "
                "with `dvc plots diff --json`"
            )
        plots += rendered
    alpha = load_params(Path(args.repo) / PARAMS_FILE).compare.alpha
    print(build_report(args.rev, alpha, args.repo, plot_images=[str(p) for p in plots]))


def _predictor(args):
    """(predictor, champion record or None): the record is read once, the checkpoint hashed once."""
    from fer.evaluate.provenance import champion_if_any, recorded_sha256
    from fer.serve.predict import Predictor

    params = load_params(args.params)
    champion = champion_if_any(args.champion_record)
    expected = recorded_sha256(args.model, champion, PATHS.evaluations)
    return Predictor(args.model, params.align, params.predict, expected), champion


def _predict(args) -> None:
    import json

    from fer.data.photos import BadPhoto, read_photo
    from fer.serve.model_card import training_note

    predictor, _ = _predictor(args)
    print(f"note: {predictor.name}: {training_note(predictor.record)}", file=sys.stderr)
    if _video_source(args.photos) is not None:
        return _predict_video(args, predictor)
    results, failed = [], 0
    for photo in args.photos:
        try:
            decoded = read_photo(photo, **predictor.limits)
            faces = predictor.predict(decoded.grey, photo, decoded.scale)
        except BadPhoto as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        results.append({"photo": photo, "faces": [face.as_dict() for face in faces]})
        if not args.json:
            for i, face in enumerate(faces, 1):
                print(f"{photo}  face {i} at x,y,w,h={','.join(map(str, face.box))}: {face.label}")
                for emotion, p in sorted(face.probabilities.items(), key=lambda kv: -kv[1]):
                    print(f"  {emotion:<9} {p:6.1%}  {'#' * round(40 * p)}")
    if args.json:
        print(json.dumps(results, indent=2, allow_nan=False))  # strict JSON: Predictor refuses NaN
    if failed:
        sys.exit(1)


def _video_source(sources: list[str]) -> str | None:
    """The one video (file or webcam index) among the inputs; None when they are all photos."""
    from fer.serve.video import is_video

    videos = [source for source in sources if is_video(source)]
    if videos and len(sources) > 1:
        raise FerError(f"{videos[0]}: a video is predicted on its own; give one video, or only photos")
    return videos[0] if videos else None


def _predict_video(args, predictor) -> None:
    from fer.serve.video import Sampling, analyse_video, plot_over_time, write_annotated, write_rows

    source = args.photos[0]
    if source.isdigit() and (not args.max_frames or args.annotate):
        raise FerError(f"webcam {source}: give --max-frames (a webcam never ends); --annotate takes a video file")
    if args.every < 1 or args.fps < 0 or args.smooth < 1:
        raise FerError("--every and --smooth take at least 1, --fps at least 0")
    sampling = Sampling(args.every, args.fps, args.max_frames)
    table = analyse_video(predictor, source, sampling, args.smooth)
    if args.rows:
        write_rows(table, args.rows)
    else:
        print(table.to_json(orient="records", indent=2) if args.json else table.to_csv(index=False), end="")
    if args.plot:
        plot_over_time(table, predictor.record.classes, args.plot)
    if args.annotate:
        write_annotated(source, table, sampling, args.annotate)
    faces = table["track"].notna()
    print(
        f"{source}: {table['frame'].nunique()} sampled frames, {faces.sum()} faces in {table['track'].nunique()} "
        f"tracks, {(~faces).sum()} frames without a face",
        file=sys.stderr,
    )


def _serve(args) -> None:
    import uvicorn

    from fer.core.malloc import GLIBC_START_BYTES, map_large_blocks
    from fer.serve.api import create_app
    from fer.serve.http_guard import deadline_protocol
    from fer.serve.model_card import model_card
    from fer.serve.prediction_log import PredictionLog

    predictor, champion = _predictor(args)
    card = model_card(
        predictor.record, predictor.checkpoint_sha256, champion, exported_from=predictor.classifier.exported_from
    )
    log = PredictionLog(args.log) if args.log else None
    # A setting of the whole process: without it glibc raises its mmap threshold after the first large photo, and
    # the decode threads' arenas keep the next ones' memory resident after a burst of uploads. Every decoded
    # photo over 128 kB is mapped, so a burst's memory goes back to the OS as soon as it is answered.
    map_large_blocks(GLIBC_START_BYTES)
    uvicorn.run(
        create_app(predictor, card, log),
        host=args.host,
        port=args.port,
        log_level="warning",
        http=deadline_protocol(predictor.settings.request_seconds),
    )


def _drift(args) -> None:
    from fer.serve.drift import drift_report

    report = drift_report(args.log, args.split, args.out, args.alpha)
    print(
        f"{report['served_faces']} served faces; drifted: {', '.join(report['drifted']) or 'none'}; "
        f"report in {args.out}/drift.md"
    )


def _profile(args) -> None:
    from fer.core.profiles import apply_profile, write_profile

    apply_profile(args.params, args.profile)
    if args.check:
        print(f"{args.params} + {args.profile}: valid params")
        return
    write_profile(args.params, args.profile)
    print(f"{args.params}: {args.profile} applied; see the changes with `dvc params diff`, run with `dvc repro`")


def _tune_worker(args) -> None:
    import tempfile

    from fer.train.job import TrainJob
    from fer.train.tuning import run_trials, trial_counts

    params = load_params(args.params)
    if not params.tune.storage:
        raise FerError(
            f"{args.params}: tune.storage is empty; a worker joins a shared study, so set it to a "
            f"database URL every worker reaches (postgresql://user@host/db)"
        )
    job = TrainJob.from_params(params, params.model, params.seed, args.split)
    with tempfile.TemporaryDirectory(prefix="fer-tune-") as scratch:
        study = run_trials(job, params.tune, scratch)
    print(f"study {study.study_name}: {trial_counts(study)}; `dvc repro tune` retrains its best")


def _synthetic_celeba(args) -> None:
    from fer.data.sources.celeba import write_celeba_layout
    from fer.data.sources.synthetic import ATTRIBUTES, generate_attributes

    if args.images < 1:
        raise FerError(f"--images: {args.images}; expected at least 1 image")
    write_celeba_layout(generate_attributes(args.images, args.size, args.seed), args.out, seed=args.seed)
    print(
        f"{args.out}: {args.images} synthetic {args.size}x{args.size} faces with {', '.join(ATTRIBUTES)} in "
        f"CelebA's Kaggle layout; read it with data.source: folder, data.path: {args.out}"
    )


def _add_model_arguments(command: argparse.ArgumentParser, run) -> None:
    command.add_argument(
        "--model",
        default=str(PATHS.champion),
        help=f"checkpoint, or an ONNX export run without torch ({PATHS.champion_onnx}, "
        f"{PATHS.champion_int8}); default: the champion's checkpoint",
    )
    command.add_argument(
        "--champion-record",
        default=str(PATHS.champion_record),
        help="the compare stage's champion record (its test metrics, and the sha256 the checkpoint must have)",
    )
    command.add_argument("--params", default=PARAMS_FILE, help="its align and predict sections")
    command.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="fer", description=__doc__)
    commands = cli.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("bench", help="training and prediction speed against a plain DataLoader loop")
    bench.add_argument("--models", nargs="+", help="keys of `models` in params.yaml (default: all)")
    bench.add_argument(
        "--images",
        type=int,
        default=2048,
        help="training images per measurement at least (more where needed to last --min-seconds)",
    )
    bench.add_argument("--repeats", type=int, default=5, help="interleaved (ours, baseline) pairs per model")
    bench.add_argument("--min-seconds", type=float, default=1.0, help="shortest measurement of the faster side")
    bench.add_argument("--batch-size", type=int, default=128)
    bench.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    bench.add_argument("--workers", type=int, default=0, help="DataLoader workers of the baseline")
    bench.add_argument("--stages", action="store_true", help="also time every pipeline stage (dvc repro -f -s)")
    bench.add_argument("--params", default=PARAMS_FILE)
    bench.add_argument("--out", help="also write the markdown table here")
    bench.set_defaults(run=_bench)
    faces = commands.add_parser(
        "bench-faces", help="face detectors on real and drawn photos: faces found, false hits, landmark error, ms"
    )
    faces.add_argument("--repeats", type=int, default=7, help="timed runs per photo after 2 warm-up runs")
    faces.add_argument("--threads", type=int, default=1, help="torch threads (MTCNN)")
    faces.add_argument(
        "--photos",
        type=int,
        default=256,
        help="drawn photos of assorted sizes to align, with known landmarks (0: none)",
    )
    faces.add_argument("--photo-repeats", type=int, default=3, help="timed align runs over the drawn photos")
    faces.add_argument("--params", default=PARAMS_FILE, help="its align section and predict.min_face_fraction")
    faces.set_defaults(run=_bench_faces)
    data = commands.add_parser(
        "bench-data",
        help="the data stages on full-size stand-ins of FER2013, Human Face "
        "Emotions and CelebA: wall time and peak memory per stage",
    )
    data.add_argument("--scale", type=float, default=1.0, help="share of the real datasets' image counts")
    data.add_argument("--root", type=Path, default=Path("bench-data"), help="a new folder for the stand-ins")
    data.add_argument("--only", nargs="*", default=[], choices=["fer2013_csv", "human_face_emotions", "celeba"])
    data.set_defaults(run=_bench_data)
    report = commands.add_parser(
        "report", help="pull-request markdown: what changed, per model a verdict (changed / within noise), leaderboard"
    )
    report.add_argument("--rev", default="main", help="the git revision to compare the workspace with")
    report.add_argument("--repo", default=".")
    report.add_argument("--plot", action="append", default=[], help="an image (path or URL) to embed")
    report.add_argument(
        "--render-plots", metavar="DIR", help="draw the DVC plots against --rev as PNG files in DIR and embed them"
    )
    report.add_argument(
        "--plots",
        nargs="+",
        metavar="PATTERN",
        help="plot ids to draw (glob; default: leaderboard, tune history, normalised confusions)",
    )
    report.set_defaults(run=_report)
    predict = commands.add_parser("predict", help="emotions of every face in some photos, or over time in a video")
    predict.add_argument(
        "photos", nargs="+", metavar="PHOTO", help="photos; or one video (mp4, avi, mov, mkv, webm) or webcam index (0)"
    )
    predict.add_argument("--json", action="store_true", help="JSON instead of a table (a video's rows: CSV)")
    video = predict.add_argument_group("video", "one row per sampled frame and face (docs/export.md)")
    video.add_argument("--every", type=int, default=1, help="sample every Nth frame")
    video.add_argument("--fps", type=float, default=0.0, help="or sample this many frames per second (0: --every)")
    video.add_argument("--max-frames", type=int, default=0, help="stop after this many sampled frames (0: all)")
    video.add_argument(
        "--smooth", type=int, default=1, help="average each track's probabilities over this many sampled frames"
    )
    video.add_argument("--rows", help="write the rows here (.csv, or .json) instead of to stdout")
    video.add_argument("--plot", help="a PNG of each emotion's probability over time")
    video.add_argument("--annotate", help="an mp4 of the sampled frames with boxes, track ids and labels")
    _add_model_arguments(predict, run=_predict)
    serve = commands.add_parser("serve", help="the prediction API and upload page (FastAPI + uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log", default=str(PATHS.predictions_log), help="SQLite prediction log ('' to log nothing)")
    _add_model_arguments(serve, run=_serve)
    drift = commands.add_parser("drift", help="served inputs against the training split (KS test per statistic)")
    drift.add_argument("--log", default=str(PATHS.predictions_log))
    drift.add_argument("--split", default=str(PATHS.split))
    drift.add_argument("--out", default=str(PATHS.drift))
    drift.add_argument("--alpha", type=float, default=0.01, help="p-value below which a statistic has drifted")
    drift.set_defaults(run=_drift)
    profile = commands.add_parser("profile", help="apply a params profile (only its differences) to params.yaml")
    profile.add_argument("profile", help="e.g. params-fer2013-gpu.yaml")
    profile.add_argument("--params", default=PARAMS_FILE)
    profile.add_argument("--check", action="store_true", help="only validate the merged params; write nothing")
    profile.set_defaults(run=_profile)
    worker = commands.add_parser(
        "tune-worker",
        help="run trials of the shared tune study (tune.storage) until it "
        "holds tune.trials; start one per machine beside `dvc repro tune`",
    )
    worker.add_argument("--params", default=PARAMS_FILE)
    worker.add_argument("--split", default=str(PATHS.split), help="the split the trials learn (dvc pull it first)")
    worker.set_defaults(run=_tune_worker)
    celeba = commands.add_parser(
        "synthetic-celeba",
        help="drawn faces with a few CelebA attributes, written in "
        "the layout of Kaggle's CelebA (list_attr_celeba.csv, img_align_celeba/, ...)",
    )
    celeba.add_argument("out", metavar="OUT", help="the folder to write (replaced if it exists)")
    celeba.add_argument("--images", type=int, default=2000)
    celeba.add_argument("--size", type=int, default=48, help="image side in pixels")
    celeba.add_argument("--seed", type=int, default=0, help="draws the faces and the train/val/test partition")
    celeba.set_defaults(run=_synthetic_celeba)
    return cli


@one_line_errors
def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
