"""Prefect orchestration: the benchmark flow (one training process per dataset × model × seed),
GPU slots, and the scheduled rerun deployment."""
