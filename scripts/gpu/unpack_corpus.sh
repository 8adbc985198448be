#!/usr/bin/env bash
# Merge the corpus payload parts that have arrived on the GPU machine into data/ and verify them.
#
# Device command, one call per part (each call carries one part; the first also the code):
#   run(command="bash scripts/gpu/unpack_corpus.sh", carry=["gpu-payload/partN"])
# where gpu-payload/ in the lead's checkout holds (or links to) /work/data/gpu-payload/part1..partN
# (made by scripts/build_gpu_corpus.sh; each part <= 52 MiB of whole shard files, part1 with the
# manifests of corpus-20h and corpus-2h and the 2 h subset's shards first). Seconds per call;
# needs only python3 (no wheels).
# All parts must arrive within one warm lease: a fresh machine starts bare.
# Afterwards: data/corpus-20h (>= 20 h, per-domain shards) and data/corpus-2h (manifest only, its
# shard paths point at ../corpus-20h/). The sha256 of every shard present is checked.
set -euo pipefail
shopt -s nullglob
mkdir -p data
for part in gpu-payload/part*/; do
    cp -rl "$part". data/ 2>/dev/null || cp -r "$part". data/  # hard links where the file system allows
done
for corpus in data/corpus-2h data/corpus-20h; do  # plain python3: the image has no soundfile before .whl
    [ -f "$corpus/manifest.json" ] || { echo "$corpus: no manifest yet (part1 not carried)"; continue; }
    python3 - "$corpus" <<'PY'
import hashlib, json, sys
from pathlib import Path
corpus = Path(sys.argv[1])
shards = json.loads((corpus / "manifest.json").read_text())["shards"]
present = [s for s in shards if (corpus / s["path"]).is_file()]
damaged = [s["path"] for s in present if hashlib.sha256((corpus / s["path"]).read_bytes()).hexdigest() != s["sha256"]]
hours = sum(sum(s["seconds"].values()) for s in present) / 3600
print(f"{corpus}: {len(present)}/{len(shards)} shards here ({hours:.2f} h), {len(damaged)} damaged {damaged[:3]}")
sys.exit(1 if damaged else 0)
PY
done
