"""Small CelebA copies in both real layouts, with synthetic 178x218 JPEGs (for tests and the data benchmark)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


LANDMARK_COLUMNS = [f"{point}_{axis}" for point in ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
                    for axis in "xy"]


def attribute_values(index: int) -> list[int]:
    """Attribute j of photo i is +1 when bit j of i*2654435761 is set: varied, and recomputable by tests."""
    bits = (index * 2654435761) & ((1 << 40) - 1)
    return [1 if bits >> j & 1 else -1 for j in range(40)]


def partition_of(index: int) -> int:
    return 0 if index % 10 < 8 else (1 if index % 10 == 8 else 2)  # 80% train, 10% valid, 10% test


def photo(index: int) -> Image.Image:
    """A 178x218 picture: a flat colour of the index with a grey square in the middle (inside any centre crop)."""
    pixels = np.empty((218, 178, 3), np.uint8)
    pixels[:] = [(37 * index) % 256, (91 * index) % 256, (53 * index) % 256]
    pixels[80:140, 60:120] = 128
    return Image.fromarray(pixels)


def landmark_values(index: int) -> list[int]:
    """CelebA's five aligned points (lefteye, righteye, nose, leftmouth, rightmouth; x then y), near the real ones."""
    return [69 + index % 3, 111, 108, 111 + index % 2, 89, 134, 73, 152, 105 - index % 4, 152]


def write_celeba(root: Path, layout: str, count: int, landmarks: bool = False) -> Path:
    """A CelebA copy of `count` photos under root in the 'official' or 'kaggle' layout, with the aligned landmark
    table when `landmarks`; returns root."""
    names = [f"{i + 1:06d}.jpg" for i in range(count)]
    image_dir = root / "img_align_celeba" / ("img_align_celeba" if layout == "kaggle" else "")
    image_dir.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        photo(index).save(image_dir / name, quality=90)
    if layout == "kaggle":
        (root / "list_attr_celeba.csv").write_text("\n".join(
            ["image_id," + ",".join(ATTRIBUTES)]
            + [name + "," + ",".join(map(str, attribute_values(i))) for i, name in enumerate(names)]) + "\n")
        (root / "list_eval_partition.csv").write_text("\n".join(
            ["image_id,partition"] + [f"{name},{partition_of(i)}" for i, name in enumerate(names)]) + "\n")
        if landmarks:
            (root / "list_landmarks_align_celeba.csv").write_text("\n".join(
                ["image_id," + ",".join(LANDMARK_COLUMNS)]
                + [name + "," + ",".join(map(str, landmark_values(i))) for i, name in enumerate(names)]) + "\n")
    else:
        # the real file: a count line, names with a trailing space, values right-aligned in width 2
        (root / "list_attr_celeba.txt").write_text("\n".join(
            [str(count), " ".join(ATTRIBUTES) + " "]
            + [name + " " + " ".join(f"{v:2d}" for v in attribute_values(i)) for i, name in enumerate(names)]) + "\n")
        (root / "list_eval_partition.txt").write_text(
            "\n".join(f"{name} {partition_of(i)}" for i, name in enumerate(names)) + "\n")
        if landmarks:  # the real file: a count line, the column names, then values right-aligned in width 5
            (root / "list_landmarks_align_celeba.txt").write_text("\n".join(
                [str(count), " ".join(LANDMARK_COLUMNS)]
                + [name + "".join(f"{v:5d}" for v in landmark_values(i)) for i, name in enumerate(names)]) + "\n")
    return root
