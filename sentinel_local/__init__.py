"""The local service manager: installs and runs the real services (`stack`) and Sentinel's own
processes (`processes`) on loopback, with their data and logs under `.stack/`. Not part of what a
production image installs; in k8s the manifests play this role."""
