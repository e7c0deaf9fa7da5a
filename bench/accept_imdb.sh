#!/usr/bin/env bash
# Issue 18's acceptance on the IMDB 2,500-review sample: a fresh clone of this checkout's HEAD with the
# minimal local entry a new user writes, `dvc repro` timed, then every row's stop reason, steps (best),
# dev evaluations, train s and job wall s, and the official peers side by side. Run it alone on the box.
#
#   bench/accept_imdb.sh [CLONE_DIR] [SAMPLE]      # defaults: /tmp/imdb-accept, /tmp/f/imdb2500.tar.gz
#   PYTHONPATH=/tmp/ft bench/accept_imdb.sh        # with the official fastText (pip install --target /tmp/ft fasttext-wheel)
#
# SAMPLE, when missing, is drawn here: 1,250 pos + 1,250 neg reviews (seed 42) of
# ../shared/corpora/aclImdb-train.tar.gz (or $IMDB_TAR), repacked as train/<label>/*.txt.
# Uses the checkout's .venv (or $VENV): nothing is installed. Commit first: the clone is of HEAD.
set -euo pipefail
src=$(git rev-parse --show-toplevel)
dir=${1:-/tmp/imdb-accept}
sample=${2:-/tmp/f/imdb2500.tar.gz}
venv=${VENV:-$src/.venv}
export PATH=$venv/bin:$PATH DVC_NO_ANALYTICS=1 PREFECT_SERVER_ANALYTICS_ENABLED=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ ! -f "$sample" ]; then
  mkdir -p "$(dirname "$sample")"
  python - "${IMDB_TAR:-$src/../shared/corpora/aclImdb-train.tar.gz}" "$sample" <<'EOF'
import io, random, sys, tarfile
src, out = sys.argv[1:]
with tarfile.open(src) as tar:  # names first, then one streaming pass (a .tar.gz has no random access)
    names = sorted(m.name for m in tar if m.isfile() and m.name.endswith(".txt"))
rng = random.Random(42)
chosen = {c: set(rng.sample([n for n in names if f"/{c}/" in f"/{n}"], 1250)) for c in ("pos", "neg")}
with tarfile.open(src, "r|gz") as tar, tarfile.open(out, "w:gz") as dst:
    for m in tar:
        c = next((c for c, ns in chosen.items() if m.name in ns), None)
        if c:
            data = tar.extractfile(m).read()
            info = tarfile.TarInfo(f"train/{c}/{m.name.rsplit('/', 1)[-1]}")
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
EOF
fi
rm -rf "$dir"
git clone -q "$src" "$dir"
cd "$dir"
# the clone's code, not whatever checkout an editable install of the venv points at (extra paths kept: fastText)
export PYTHONPATH=$dir${PYTHONPATH:+:$PYTHONPATH}
python - "$sample" <<'EOF'
import re, sys
p = "params.yaml"
s = open(p).read()
s = s.replace("datasets:\n", f"datasets:\n  imdb: {{kind: local, language: en, path: {sys.argv[1]}}}\n", 1)
s = re.sub(r"(?m)^  datasets: \[.*\]$", "  datasets: [imdb]", s)
open(p, "w").write(s)
EOF
git rev-parse --short HEAD
nproc
uptime
start=$(date +%s)
dvc repro
end=$(date +%s)
uptime
echo "dvc repro: $((end - start)) s"
python - <<'EOF'
from pipeline import paths
from pipeline.artifacts import RunMetrics, RunStatus
from pipeline.config import load_config

cfg = load_config("params.yaml")
print("| model | acc | stop | steps (best) | evaluations | train s | job wall s |\n|---|---:|---|---|---:|---:|---:|")
capped = 0
for model in cfg.benchmark.models:
    m = RunMetrics.of(paths.report_dir("imdb", model))
    st = RunStatus.of("imdb", model, cfg.benchmark.primary_seed)
    g = lambda k: getattr(m, k, "")  # noqa: E731
    capped += g("stop_reason") not in ("plateau", "solver")
    print(f"| {model} | {m.accuracy:.4f} | {g('stop_reason')} | {g('steps')} ({g('best_step')}) | {g('evaluations')} "
          f"| {g('train_time_s')} | {st.wall_time_s if st else ''} |")
print(f"rows not at a plateau: {capped}")
EOF
python "$src/bench/bench_peers.py" -d imdb
