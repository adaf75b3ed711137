# The worker AMI: Debian 12 (its Python is the 3.11 the project pins), the worker and its pinned
# dependencies in /opt/facerec/venv, the VGGFace2 weights checked by sha256, and a systemd unit
# that starts the worker at boot. `make ami` builds it; see worker_ami/README.md.

packer {
  required_version = ">= 1.6.6"
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type        = string
  default     = "c7i.large"
  description = "Build machine only; workers use the launch template's type."
}

variable "wheel" {
  type        = string
  description = "The worker's wheel (make ami builds it into dist/ with worker_ami/wheel.py)."
}

variable "weights_sha256" {
  type        = string
  description = "sha256 of 20180402-114759-vggface2.pt; make ami passes facerec_worker.engine.config.VGGFACE2_SHA256."
}

variable "weights_url" {
  type    = string
  default = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"
}

variable "ami_prefix" {
  type    = string
  default = "facerec-worker"
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "amazon-ebs" "worker" {
  region        = var.region
  instance_type = var.instance_type
  ami_name      = "${var.ami_prefix}-${local.timestamp}"
  ssh_username  = "admin"

  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"] # Debian's own AWS account
    most_recent = true
  }

  # Small and quick to boot: 8 GB gp3; the CPU build of torch, not the CUDA one, keeps the
  # venv under 2 GB. (Workers require IMDSv2 through the launch template.)
  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 8
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }

  tags = {
    "facerec:role" = "worker-ami"
    Name           = "${var.ami_prefix}-${local.timestamp}"
  }
}

build {
  sources = ["source.amazon-ebs.worker"]

  provisioner "file" {
    source      = var.wheel
    destination = "/tmp/"
  }

  provisioner "file" {
    sources = [
      "${path.root}/../systemd/facerec-worker.service",
      "${path.root}/../systemd/facerec-worker-failed.service",
      "${path.root}/../systemd/facerec-logs.service",
      "${path.root}/../cloudwatch/agent.json",
    ]
    destination = "/tmp/"
  }

  provisioner "shell" {
    script          = "${path.root}/provision.sh"
    execute_command = "sudo -E bash '{{ .Path }}'"
    environment_vars = [
      "WHEEL=/tmp/${basename(var.wheel)}",
      "WEIGHTS_URL=${var.weights_url}",
      "WEIGHTS_SHA256=${var.weights_sha256}",
    ]
  }
}
