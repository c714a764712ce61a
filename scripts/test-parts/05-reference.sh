#!/usr/bin/env bash
# Checks the shared test vectors with the independent Python implementation
# of docs/PROTOCOL.md: the envelope (docs/reference/mqseal_ref.py, v1.json)
# and the control protocol of section 14 (docs/reference/mqseal_control_ref.py,
# control-v1.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
if ! python3 -c "import cryptography" 2>/dev/null; then
  python3 -m pip install --quiet "cryptography>=42"
fi
python3 docs/reference/mqseal_ref.py core/tests/vectors/v1.json
python3 docs/reference/mqseal_control_ref.py core/tests/vectors/control-v1.json
