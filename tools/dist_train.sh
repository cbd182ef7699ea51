#!/usr/bin/env bash
# Multi-process training with torchrun: one process per GPU (or per CPU slot: gloo on CPUs).
#
#   tools/dist_train.sh NGPUS CONFIG [key.sub=value ...]
#
# runs `python -m torch.distributed.run --nproc_per_node NGPUS -m xmodal train CONFIG ...`.
# Each process reads RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT from torchrun,
# uses cuda:LOCAL_RANK (nccl) or the CPU (gloo), and train.batch_size is per process:
# global batch = batch_size x NGPUS x NNODES x grad_accum.
#
# One node: nothing else to set (a free port is picked: torchrun --standalone), or set
# MASTER_PORT to fix it.
#
# Several nodes: run the same command on every node, with these environment variables, which
# become torchrun's own flags:
#   NNODES       number of nodes                       (--nnodes, default 1)
#   NODE_RANK    this node's index, 0..NNODES-1        (--node_rank, default 0)
#   MASTER_ADDR  address of node 0, reachable by all   (--master_addr, default 127.0.0.1)
#   MASTER_PORT  a free port on node 0                 (--master_port, default 29500)
# e.g. on node 0 and node 1 of two 8-GPU nodes:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 tools/dist_train.sh 8 configs/x.yaml
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 tools/dist_train.sh 8 configs/x.yaml
# Under SLURM: srun one task per node and set NODE_RANK=$SLURM_NODEID, NNODES=$SLURM_NNODES,
# MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1).
#
# Other variables: PYTHON (default: python), OMP_NUM_THREADS (torchrun sets 1 if unset),
# DRY_RUN=1 prints the command instead of running it.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 NGPUS CONFIG [key.sub=value ...]   (multi-node: see the header of $0)" >&2
    exit 2
fi
NGPUS=$1
CONFIG=$2
shift 2

NNODES=${NNODES:-1}
PYTHON=${PYTHON:-python}
if [[ "$NNODES" == "1" && -z "${MASTER_PORT:-}" ]]; then
    RDZV=(--standalone)
else
    RDZV=(--nnodes="$NNODES" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}"
          --master_port="${MASTER_PORT:-29500}")
fi
CMD=("$PYTHON" -m torch.distributed.run "${RDZV[@]}" --nproc_per_node="$NGPUS" -m xmodal train "$CONFIG" "$@")

if [[ -n "${DRY_RUN:-}" ]]; then
    echo "${CMD[*]}"
else
    exec "${CMD[@]}"
fi
