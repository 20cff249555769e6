"""Tests of the Kubernetes manifests in k8s/."""
