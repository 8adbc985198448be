#!/usr/bin/env bash
# Merge the corpus payload parts that have arrived on the GPU machine into data/ and verify them.
#
# Device command, one call per part (each call carries one part; the first also the code):
#   run(command="bash scripts/gpu/unpack_corpus.sh", carry=["gpu-payload/partN"])
# where gpu-payload/ in the lead's checkout holds (or links to) /work/data/gpu-payload/part1..partN
# (made by scripts/build_gpu_corpus.sh; each part <= 52 MiB of whole shard files, part1 with the
# manifests of corpus-20h and corpus-2h and the 2 h subset's shards first). Seconds per call.
# All parts must arrive within one warm lease: a fresh machine starts bare.
# Afterwards: data/corpus-20h (>= 20 h, per-domain shards) and data/corpus-2h (manifest only, its
# shard paths point at ../corpus-20h/). usad data check verifies sha256 of every shard present.
set -euo pipefail
shopt -s nullglob
mkdir -p data
for part in gpu-payload/part*/; do
    cp -rl "$part". data/ 2>/dev/null || cp -r "$part". data/  # hard links where the file system allows
done
source scripts/gpu/distill_env.sh
for corpus in data/corpus-2h data/corpus-20h; do
    [ -f "$corpus/manifest.json" ] || { echo "$corpus: no manifest yet (part1 not carried)"; continue; }
    python3 - "$corpus" <<'PY'
import sys
from pathlib import Path
from usad.data.shards import read_manifest, verify_shards
corpus = Path(sys.argv[1])
shards = read_manifest(corpus)["shards"]
present = [s for s in shards if (corpus / s["path"]).is_file()]
bad = verify_shards(corpus)
missing = [s["path"] for s in shards if not (corpus / s["path"]).is_file()]
damaged = sorted(set(bad) - set(missing))
hours = sum(sum(s["seconds"].values()) for s in present) / 3600
print(f"{corpus}: {len(present)}/{len(shards)} shards here ({hours:.2f} h), {len(damaged)} damaged {damaged[:3]}")
sys.exit(1 if damaged else 0)
PY
done
