#!/usr/bin/env bash
# The diffusion benchmark on a lent GPU machine (the `device` tool), as run on 2026-12-04
# (benchmarks/gpu_diffusion_h200.txt). That machine has PyTorch, transformers, OpenCV and numpy 2
# but not diffusers, PyAV or open_clip (the CLIP vocabulary), and its Python is 3.12; MediaPipe
# and dlib do not fit in the 64 MiB that travels, hence --no-face and no privacy check. Here, once:
#   P="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
#   for p in diffusers==0.42.1 av==18.1.0 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth pose-format==0.15.0; do
#     python -m pip download -q --no-deps $P -d .whl $p; done        # 43 MiB; .whl/ is git-ignored
# then run `bash benchmarks/gpu_bench.sh` there with carry [".whl"]. Five files come back in $OUT.
# The face stage's model (TPSMM, inference and fine-tuning; needs only torch, OpenCV and numpy there)
# runs first when its face crops travel too; here, once (the file is git-ignored, so carry it):
#   python benchmarks/gpu_face_check.py --make .gpu_faces.npz        # 12 MB, real face crops
# and add ".gpu_faces.npz" to carry. A dry run of that script here: --device cpu --frames 10 --steps 2.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $OUT/gpu.txt
quiet() { grep -v "^W0000\|^I0000\|should be kept in float32"; }
if [ -f .gpu_faces.npz ]; then
  timeout 240 python3 benchmarks/gpu_face_check.py .gpu_faces.npz --json $OUT/gpu_face.json 2>&1 | quiet | tee $OUT/gpu_face.log
fi
timeout 300 python3 benchmarks/bench_diffusion.py --gpu --no-face --repeats 2 --json $OUT/gpu_bench8.json 2>&1 | quiet | tee $OUT/gpu_bench8.log
timeout 240 python3 benchmarks/bench_diffusion.py --gpu --no-face --frames 16 --repeats 2 --json $OUT/gpu_bench16.json 2>&1 | quiet | tee $OUT/gpu_bench16.log
