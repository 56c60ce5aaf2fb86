"""A throw-away CA and server certificate for the API server (openssl CLI), and kubeconfig files."""
from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import yaml


def make_tls(d: Path) -> dict:
    """CA + a 127.0.0.1/localhost server cert signed by it; returns the paths."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt, key, csr, crt = (d / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = d / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2", "-subj",
        "/CN=kubectl-whose-lab-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=kube-apiserver")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return {"ca": ca_crt, "cert": crt, "key": key}


def kubeconfig(server: str, ca_file: Path, user: str, token: str, namespace: str = "default") -> str:
    cluster = {"server": server}
    if ca_file is not None and server.startswith("https"):
        cluster["certificate-authority-data"] = base64.b64encode(Path(ca_file).read_bytes()).decode()
    doc = {"apiVersion": "v1", "kind": "Config", "preferences": {},
           "clusters": [{"name": "kubectl-whose-lab", "cluster": cluster}],
           "users": [{"name": user, "user": {"token": token}}],
           "contexts": [{"name": f"lab-{user}", "context": {"cluster": "kubectl-whose-lab", "user": user,
                                                            "namespace": namespace}}],
           "current-context": f"lab-{user}"}
    return yaml.safe_dump(doc, sort_keys=False)
