"""Generated images per second from sampling to FID: ours against clean-fid's generator path, in one run.

Both sides draw the same latents and noise from the same seed, run the same generator (a
random-weight StyleGAN v1 backbone, 256 px by default) and the same Inception file, and score the
features against the same reference statistics:

- clean-fid: ``cleanfid.fid.get_model_features(gen, ...)`` in "clean" mode -- the generator part of
  ``compute_fid(gen=...)``, which moves every image to the CPU and resizes it with PIL, one
  channel at a time -- with ``gen`` returning uint8 images as clean-fid expects;
- ours: the generator's [-1, 1] batch straight into ``build_extractor("inception")`` (quantised,
  resized with PIL's filter on the device when ``--resize torch``/``auto`` on a GPU, normalised).

Then the FID of each feature set against the reference, with one Fréchet-distance function for
both (benchmark.metrics; clean-fid's own passes ``disp=`` to scipy's sqrtm, which scipy 1.18
removed). The script prints images/s of each, their ratio and the two FIDs.

Usage:
    python benchmarks/fid_speed.py                                # CPU, 200 images, stand-in Inception
    python benchmarks/fid_speed.py --device cuda --count 10000 --batch 100 \\
        --inception /tmp/inception-2015-12-05.pt                  # the real network on a GPU

Without ``--inception`` a tiny TorchScript stand-in with the real file's interface is used
(tests/features/standin.py): it makes the network nearly free, so the figures then measure
sampling, quantisation and resizing, where the two pipelines differ.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.features import build_extractor  # noqa: E402
from benchmark.features.inception import FILENAME, to_uint8  # noqa: E402
from benchmark.metrics import frechet_distance  # noqa: E402
from benchmark.nets import BackboneConfig, StyledGenerator  # noqa: E402
from benchmarks.common import timed  # noqa: E402


def cleanfid_features(G, inception_folder: Path, count: int, batch: int, device: torch.device) -> np.ndarray:
    import cleanfid.features
    from cleanfid.fid import get_model_features
    from cleanfid.inception_torchscript import InceptionV3W

    # clean-fid reads (or downloads to) /tmp/inception-2015-12-05.pt; point it at the same file as ours.
    def local(path, download=True, resize_inside=False):
        return InceptionV3W(str(inception_folder), download=False, resize_inside=resize_inside)

    cleanfid.features.InceptionV3W = local
    model = cleanfid.features.build_feature_extractor("clean", device, use_dataparallel=False)

    def gen(z):  # clean-fid wants images in [0, 255]
        return to_uint8(G(z))

    return get_model_features(
        gen,
        model,
        mode="clean",
        z_dim=G.config.style_dim,
        num_gen=count,
        batch_size=batch,
        device=device,
        verbose=False,
    )


@torch.no_grad()
def our_features(G, extractor, count: int, batch: int, device: torch.device) -> np.ndarray:
    out = []
    for _ in range(count // batch):
        z = torch.randn(batch, G.config.style_dim).to(device)  # drawn as clean-fid draws them
        out.append(extractor(G(z)).float().cpu())
    return torch.cat(out).numpy()


def measure(
    G,
    folder: Path,
    count: int,
    batch: int,
    device: torch.device,
    resize: str = "auto",
    workers: int | None = None,
    seed: int = 0,
    fid_dims: int | None = None,
) -> dict:
    """Both pipelines on ``G`` with the Inception file in ``folder``: seconds, images/s and the two FIDs.

    The FID of each side is against a reference set of ``count`` other samples of ``G`` (ours),
    computed on ``device``; a side's images/s counts its features and its FID. ``fid_dims`` keeps
    only the first features for the FIDs (gpu_check.py --dry: a 2048-d eigendecomposition alone
    takes seconds of CPU).
    """
    extractor = build_extractor("inception", device=str(device), path=str(folder), resize=resize, workers=workers)
    torch.manual_seed(seed + 1)
    reference = our_features(G, extractor, count, batch, device)
    with torch.no_grad():  # warm-up: first-call costs (kernels, resize taps) stay out of both timings
        our_features(G, extractor, batch, batch, device)
        cleanfid_features(G, folder, batch, batch, device)
        torch.manual_seed(seed)
        ours, t_ours = timed(lambda: our_features(G, extractor, count, batch, device), device)
        torch.manual_seed(seed)
        theirs, t_theirs = timed(lambda: cleanfid_features(G, folder, count, batch, device), device)
    dims = slice(None, fid_dims)
    fid_ours, t_fid = timed(lambda: frechet_distance(reference[:, dims], ours[:, dims], device=device), device)
    fid_theirs = frechet_distance(reference[:, dims], theirs[:, dims], device=device)
    return {
        "count": count,
        "features_seconds": {"ours": t_ours, "clean-fid": t_theirs},
        "fid_seconds": t_fid,
        "images_per_second": {"ours": count / (t_ours + t_fid), "clean-fid": count / (t_theirs + t_fid)},
        "fid": {"ours": fid_ours, "clean-fid": fid_theirs},
        "relative_fid_difference": abs(fid_ours - fid_theirs) / max(abs(fid_theirs), 1e-12),
        "max_feature_difference": float(np.abs(ours - theirs).max()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="generated images per pipeline")
    parser.add_argument("--batch", type=int, default=20, help="images per generator call (both pipelines)")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--inception", default=None, help="the real inception-2015-12-05.pt (default: stand-in)")
    parser.add_argument("--resize", default="auto", choices=["auto", "pil", "torch"], help="our resize")
    parser.add_argument("--workers", type=int, default=None, help="threads for our PIL resize")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.count % args.batch:
        parser.error("--count must be a multiple of --batch (clean-fid generates whole batches)")
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy's BLAS too (the FID's eigendecompositions)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        if args.inception:
            inception = Path(args.inception).expanduser().resolve()
            folder = inception if inception.is_dir() else inception.parent
            if not (folder / FILENAME).is_file():
                parser.error(f"clean-fid needs the file named {FILENAME}; got {args.inception}")
            network = "real Inception"
        else:
            from tests.features.standin import save_standin

            folder = Path(tmp)
            save_standin(folder)
            network = "stand-in network"
        torch.manual_seed(args.seed)
        G = StyledGenerator(BackboneConfig(resolution=args.resolution)).to(device).eval()
        print(
            f"{args.count} images of {args.resolution} px in batches of {args.batch} on {device} "
            f"({torch.get_num_threads()} torch threads), {network}, our resize: {args.resize}"
        )
        result = measure(G, folder, args.count, args.batch, device, args.resize, args.workers, args.seed)

    t_ours, t_theirs = result["features_seconds"]["ours"], result["features_seconds"]["clean-fid"]
    rate, t_fid = result["images_per_second"], result["fid_seconds"]
    print(f"{'':28s}{'features s':>11s}{'+ FID s':>9s}{'images/s':>10s}")
    print(f"{'clean-fid get_model_features':28s}{t_theirs:11.2f}{t_fid:9.2f}{rate['clean-fid']:10.1f}")
    print(f"{'ours (inception extractor)':28s}{t_ours:11.2f}{t_fid:9.2f}{rate['ours']:10.1f}")
    ratio, features_ratio = rate["ours"] / rate["clean-fid"], t_theirs / t_ours
    print(f"throughput ratio ours / clean-fid: {ratio:.2f}x (sampling + features only: {features_ratio:.2f}x)")
    print(f"max |feature difference|: {result['max_feature_difference']:.3g}")
    fid = result["fid"]
    print(
        f"FID ours {fid['ours']:.6f}  clean-fid pipeline {fid['clean-fid']:.6f}  "
        f"relative difference {result['relative_fid_difference']:.2e}"
    )


if __name__ == "__main__":
    main()
