"""Readers and writers for the SemanticKITTI / ScribbleKITTI / KITTI-odometry layout.

``<root>/dataset/sequences/XX/`` holds ``velodyne/NNNNNN.bin`` (float32 x, y, z, remission),
``labels/NNNNNN.label`` and ``scribbles/NNNNNN.label`` (uint32: raw semantic id in the low 16
bits, instance id in the high 16), ``image_2/NNNNNN.png``, ``calib.txt`` (P0..P3, Tr),
``poses.txt`` (3x4 camera-0 poses) and ``times.txt`` (seconds). The embedded synthetic street
data are written in exactly this layout (plus ``labels_2/`` with dense 2D train-id images), so
the same functions read both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kdseg.errors import DataFormatError
from kdseg.geometry import lidar_poses, project_points
from kdseg.io import atomic_open, write_text

from .semantickitti_labels import raw_to_train, unknown_raw_ids

CALIB_KEYS: tuple[str, ...] = ("P0", "P1", "P2", "P3", "Tr")


# ----------------------------------------------------------------------------------- scans
def read_points(path: str | Path) -> np.ndarray:
    """Read a velodyne ``.bin`` scan: ``(N, 4)`` float32 x, y, z (metres), remission."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "scan file does not exist")
    size = path.stat().st_size
    if size % 16:
        raise DataFormatError(
            path, f"size {size} bytes is not a multiple of 16 (4 float32 per point); corrupt scan"
        )
    points = np.fromfile(path, dtype="<f4").reshape(-1, 4)
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            path, f"{int(bad.sum())} points have NaN/inf coordinates (first at index {first})"
        )
    return points


def write_points(path: str | Path, points: np.ndarray) -> None:
    """Atomically write ``(N, 4)`` points as a little-endian float32 ``.bin``."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 4:
        raise ValueError(f"points must be (N, 4), got {points.shape}")
    with atomic_open(path, "wb") as fh:
        fh.write(np.ascontiguousarray(points, dtype="<f4").tobytes())


# ---------------------------------------------------------------------------------- labels
def read_label(path: str | Path, num_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``.label`` file: ``(raw semantic ids (N,) uint16, instance ids (N,) uint16)``.

    Args:
        num_points: if given, the number of points of the matching scan; a mismatch is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "label file does not exist")
    size = path.stat().st_size
    if size % 4:
        raise DataFormatError(path, f"size {size} bytes is not a multiple of 4 (uint32 labels)")
    data = np.fromfile(path, dtype="<u4")
    if num_points is not None and data.shape[0] != num_points:
        raise DataFormatError(
            path, f"has {data.shape[0]} labels but the scan has {num_points} points"
        )
    return (data & 0xFFFF).astype(np.uint16), (data >> 16).astype(np.uint16)


def write_label(path: str | Path, semantic_raw: np.ndarray, instance: np.ndarray) -> None:
    """Atomically write raw semantic ids and instance ids ``(N,)`` as a uint32 ``.label``."""
    sem = np.asarray(semantic_raw, dtype=np.uint32)
    inst = np.asarray(instance, dtype=np.uint32)
    if sem.shape != inst.shape or sem.ndim != 1:
        raise ValueError(f"semantic {sem.shape} and instance {inst.shape} must be equal (N,)")
    if sem.size and (sem.max() > 0xFFFF or inst.max() > 0xFFFF):
        raise ValueError("semantic and instance ids must fit in 16 bits")
    with atomic_open(path, "wb") as fh:
        fh.write(((inst << 16) | sem).astype("<u4").tobytes())


def train_labels(path: str | Path, semantic_raw: np.ndarray) -> np.ndarray:
    """Map raw ids read from ``path`` to train ids; unknown ids are an error naming the file."""
    try:
        return raw_to_train(semantic_raw)
    except ValueError:
        unknown = unknown_raw_ids(semantic_raw).tolist()
        raise DataFormatError(
            path, f"unknown raw label ids {unknown} (not in SemanticKITTI's learning_map)"
        ) from None


# ----------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """KITTI odometry calibration. ``P[k]`` is the ``(3, 4)`` projection of rectified camera k;
    ``Tr`` the ``(4, 4)`` velodyne -> camera 0 transform."""

    P: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    Tr: np.ndarray

    @property
    def P2(self) -> np.ndarray:
        """Projection of the left colour camera (``image_2``)."""
        return self.P[2]

    def camera_center_lidar(self, cam: int = 2) -> np.ndarray:
        """Centre of rectified camera ``cam`` in the LiDAR frame, ``(3,)`` metres."""
        P = self.P[cam]
        K = P[:, :3]
        t_cam0 = -np.linalg.solve(K, P[:, 3])  # camera centre in camera-0 coordinates
        Tinv = np.linalg.inv(self.Tr)
        return Tinv[:3, :3] @ t_cam0 + Tinv[:3, 3]


def parse_calib_lines(
    path: str | Path, sizes: dict[str, int], what: str = "calibration file"
) -> dict[str, np.ndarray]:
    """Parse ``KEY: numbers`` lines (KITTI calibration files) into float64 arrays.

    ``sizes`` gives the required keys and their number count; other keys are kept unchecked.
    Every problem raises :class:`DataFormatError` naming the file, line and key.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, f"{what} does not exist (needed for projection)")
    values: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        if not sep:
            raise DataFormatError(path, f"line {lineno}: expected 'KEY: values', got {line!r}")
        key = key.strip()
        try:
            nums = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            raise DataFormatError(path, f"line {lineno} ({key}): non-numeric value") from None
        if key in sizes and nums.size != sizes[key]:
            raise DataFormatError(
                path, f"line {lineno} ({key}): expected {sizes[key]} numbers, got {nums.size}"
            )
        if not np.isfinite(nums).all():
            raise DataFormatError(path, f"line {lineno} ({key}): NaN/inf value")
        values[key] = nums
    missing = [k for k in sizes if k not in values]
    if missing:
        raise DataFormatError(path, f"missing calibration keys {missing}")
    return values


def read_calib(path: str | Path) -> Calibration:
    """Parse an odometry ``calib.txt``: ``P0..P3`` and ``Tr``, 12 numbers each."""
    values = parse_calib_lines(path, {k: 12 for k in CALIB_KEYS})
    Tr = np.vstack([values["Tr"].reshape(3, 4), [0.0, 0.0, 0.0, 1.0]])
    Ps = tuple(values[f"P{k}"].reshape(3, 4) for k in range(4))
    return Calibration(P=Ps, Tr=Tr)  # type: ignore[arg-type]


def write_calib(path: str | Path, calib: Calibration) -> None:
    """Atomically write ``calib.txt`` in KITTI's format."""
    lines = [f"P{k}: " + " ".join(f"{v:.12e}" for v in calib.P[k].ravel()) for k in range(4)]
    lines.append("Tr: " + " ".join(f"{v:.12e}" for v in calib.Tr[:3].ravel()))
    write_text(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- poses, times
def read_poses(path: str | Path) -> np.ndarray:
    """Read ``poses.txt``: ``(F, 4, 4)`` camera-0 poses (one 3x4 row-major line per scan)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "poses file does not exist")
    try:
        rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataFormatError(path, f"malformed poses: {exc}") from None
    if rows.shape[1] != 12:
        raise DataFormatError(path, f"expected 12 numbers per line, got {rows.shape[1]}")
    poses = np.tile(np.eye(4), (rows.shape[0], 1, 1))
    poses[:, :3, :] = rows.reshape(-1, 3, 4)
    return poses


def write_poses(path: str | Path, poses: np.ndarray) -> None:
    """Atomically write ``(F, 4, 4)`` poses as ``poses.txt``."""
    poses = np.asarray(poses, dtype=np.float64)
    lines = [" ".join(f"{v:.9e}" for v in p[:3].ravel()) for p in poses]
    write_text(path, "\n".join(lines) + "\n")


def read_times(path: str | Path) -> np.ndarray:
    """Read ``times.txt``: ``(F,)`` float64 seconds."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "times file does not exist")
    try:
        return np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as exc:
        raise DataFormatError(path, f"malformed times: {exc}") from None


def write_times(path: str | Path, times: np.ndarray) -> None:
    """Atomically write ``(F,)`` seconds as ``times.txt``."""
    write_text(path, "\n".join(f"{t:.6e}" for t in np.asarray(times, np.float64)) + "\n")


# ---------------------------------------------------------------------------------- images
def read_image(path: str | Path) -> np.ndarray:
    """Read an RGB image as ``(H, W, 3)`` uint8."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "image file does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise DataFormatError(path, f"cannot decode image: {exc}") from None


def read_label_image(path: str | Path) -> np.ndarray:
    """Read a single-channel label PNG as ``(H, W)`` int64 (train ids, 255 = ignore)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "label image does not exist")
    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I;16", "I"):
            raise DataFormatError(path, f"label image must be single-channel, got mode {im.mode}")
        return np.asarray(im).astype(np.int64)


# ---------------------------------------------------------------------------------- frames
@dataclass
class Frame:
    """One LiDAR frame with everything a method may need.

    Attributes:
        sequence, index: where the frame lives (``"08"``, 17).
        points: ``(N, 4)`` float32 x, y, z (metres, LiDAR frame), remission.
        labels: ``(N,)`` int64 train ids (255 = ignore) of the dense labels, or ``None``.
        instances: ``(N,)`` int64 instance ids (0 = none), or ``None``.
        labelled: ``(N,)`` bool, which points carry a training label under the chosen
            supervision (all for dense labels, the scribbled ones for scribbles).
        pose: ``(4, 4)`` LiDAR pose in the LiDAR frame of the sequence's first scan.
        calib: the sequence's :class:`Calibration`.
        image: ``(H, W, 3)`` uint8 ``image_2``, or ``None`` if not requested.
        time: seconds since the start of the sequence.
    """

    sequence: str
    index: int
    points: np.ndarray
    labels: np.ndarray | None
    instances: np.ndarray | None
    labelled: np.ndarray
    pose: np.ndarray
    calib: Calibration
    image: np.ndarray | None = None
    time: float = 0.0
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_points(self) -> int:
        return int(self.points.shape[0])

    def image_projection(self):
        """Project the points into ``image_2`` (needs the image for its size)."""
        if self.image is None:
            raise ValueError(f"frame {self.sequence}/{self.index:06d} was loaded without its image")
        h, w = self.image.shape[:2]
        return project_points(self.points[:, :3], self.calib.P2, self.calib.Tr, (w, h))


class SemanticKITTI:
    """A SemanticKITTI-layout dataset rooted at ``root`` (the folder that holds ``dataset/``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.sequences_dir = self.root / "dataset" / "sequences"
        if not self.sequences_dir.is_dir():
            raise DataFormatError(
                self.sequences_dir, "not a SemanticKITTI layout (no dataset/sequences)"
            )
        self._calib: dict[str, Calibration] = {}
        self._poses: dict[str, np.ndarray] = {}

    def seq_dir(self, sequence: str) -> Path:
        return self.sequences_dir / sequence

    def sequences(self) -> list[str]:
        """Sequence names present on disk, sorted."""
        return sorted(p.name for p in self.sequences_dir.iterdir() if (p / "velodyne").is_dir())

    def frame_ids(self, sequence: str) -> list[int]:
        """Scan indices with a velodyne file in ``sequence``, sorted."""
        return sorted(int(p.stem) for p in (self.seq_dir(sequence) / "velodyne").glob("*.bin"))

    def calib(self, sequence: str) -> Calibration:
        if sequence not in self._calib:
            self._calib[sequence] = read_calib(self.seq_dir(sequence) / "calib.txt")
        return self._calib[sequence]

    def lidar_poses(self, sequence: str) -> np.ndarray:
        """``(F, 4, 4)`` LiDAR poses of the sequence (see :func:`kdseg.geometry.lidar_poses`)."""
        if sequence not in self._poses:
            cam = read_poses(self.seq_dir(sequence) / "poses.txt")
            self._poses[sequence] = lidar_poses(cam, self.calib(sequence).Tr)
        return self._poses[sequence]

    def path(self, sequence: str, kind: str, index: int) -> Path:
        """Path of ``kind`` in {velodyne, labels, scribbles, image_2, labels_2} for a scan."""
        ext = {"velodyne": ".bin", "labels": ".label", "scribbles": ".label"}.get(kind, ".png")
        return self.seq_dir(sequence) / kind / f"{index:06d}{ext}"

    def frame(
        self,
        sequence: str,
        index: int,
        supervision: str = "labels",
        with_image: bool = False,
        with_labels: bool = True,
    ) -> Frame:
        """Load one frame.

        Args:
            supervision: ``"labels"`` (dense) or ``"scribbles"``: which file decides ``labelled``.
                The dense labels are loaded as ``labels`` whenever they exist (for evaluation).
            with_image: also read ``image_2`` (a missing image is then an error).
            with_labels: read label files at all (False for unlabelled test scans).
        """
        if supervision not in ("labels", "scribbles"):
            raise ValueError(f"supervision must be 'labels' or 'scribbles', got {supervision!r}")
        points = read_points(self.path(sequence, "velodyne", index))
        n = points.shape[0]
        labels = instances = None
        labelled = np.zeros(n, dtype=bool)
        if with_labels:
            lpath = self.path(sequence, "labels", index)
            if lpath.is_file() or supervision == "labels":
                raw, inst = read_label(lpath, n)
                labels = train_labels(lpath, raw)
                instances = inst.astype(np.int64)
                labelled = labels != 255
            if supervision == "scribbles":
                spath = self.path(sequence, "scribbles", index)
                sraw, _ = read_label(spath, n)
                strain = train_labels(spath, sraw)
                labelled = strain != 255
                if labels is None:
                    labels = strain
        image = None
        if with_image:
            ipath = self.path(sequence, "image_2", index)
            if not ipath.is_file():
                raise DataFormatError(ipath, "camera image missing but this frame needs one")
            image = read_image(ipath)
        poses = self.lidar_poses(sequence)
        if index >= poses.shape[0]:
            raise DataFormatError(
                self.seq_dir(sequence) / "poses.txt",
                f"has {poses.shape[0]} poses but scan {index} was requested",
            )
        times_path = self.seq_dir(sequence) / "times.txt"
        time = float(read_times(times_path)[index]) if times_path.is_file() else 0.0
        return Frame(
            sequence=sequence,
            index=index,
            points=points,
            labels=labels,
            instances=instances,
            labelled=labelled,
            pose=poses[index],
            calib=self.calib(sequence),
            image=image,
            time=time,
        )

    def scribble_labels(self, sequence: str, index: int, num_points: int) -> np.ndarray:
        """Train ids ``(N,)`` from ``scribbles/`` (255 where no scribble)."""
        spath = self.path(sequence, "scribbles", index)
        raw, _ = read_label(spath, num_points)
        return train_labels(spath, raw)
