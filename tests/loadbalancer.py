"""A real load balancer for tests: nginx (Debian's package), in front of the replicas of each service.

The configuration is what a deployment would use in front of Burgermelding: round robin over the replicas, a
request that finds its replica dead tried once on another (our POSTs carry an Idempotency-Key, so a retry is
safe even after the first replica stored it), the client's address passed on, `/metrics` not passed at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.suite import die_with_parent, stop_process


@dataclass
class LoadBalancer:
    process: subprocess.Popen[bytes]
    folder: Path

    def log(self) -> str:
        path = self.folder / "nginx-error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)


def nginx_config(
    folder: Path, fronts: dict[str, int], replicas: dict[str, list[int]], certificate: tuple[Path, Path] | None = None
) -> str:
    """One listening port per service, each in front of that service's replicas; HTTPS with `certificate` (the
    certificate's and its key's files), as a deployment terminates TLS in front of the services."""
    temp = {name: folder / f"nginx-{name}" for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    upstreams, servers = [], []
    for name, front in fronts.items():
        members = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=3s;" for port in replicas[name])
        upstreams.append(f"    upstream {name} {{\n{members}\n        keepalive 16;\n    }}")
        servers.append(f"""    server {{
        listen 127.0.0.1:{front}{" ssl" if certificate else ""};
        location = /metrics {{ return 404; }}
        location / {{ proxy_pass http://{name}; }}
    }}""")
    user = "user root root;\n" if os.geteuid() == 0 else ""
    tls = f"    ssl_certificate {certificate[0]};\n    ssl_certificate_key {certificate[1]};\n" if certificate else ""
    return f"""{user}worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    client_max_body_size 250m;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;  # with the port the client used (the console checks Origin against it)
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_next_upstream error timeout http_502 non_idempotent;
    proxy_next_upstream_tries 2;
    proxy_connect_timeout 2s;
    proxy_read_timeout 60s;
    proxy_buffering off;
    proxy_set_header X-Forwarded-Proto $scheme;
{tls}{chr(10).join(upstreams)}
{chr(10).join(servers)}
}}
"""


def start_nginx(
    folder: Path, fronts: dict[str, int], replicas: dict[str, list[int]], certificate: tuple[Path, Path] | None = None
) -> LoadBalancer:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx is needed (Debian package nginx-light; `python3 dev.py test` installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(nginx_config(folder, fronts, replicas, certificate))
    checked = subprocess.run([nginx, "-t", "-q", "-p", str(folder), "-c", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refuses its configuration:\n{checked.stderr}")
    process = subprocess.Popen(
        [nginx, "-p", str(folder), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    balancer = LoadBalancer(process, folder)
    deadline = time.monotonic() + 20
    front = next(iter(fronts.values()))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with code {process.returncode}:\n{balancer.log()}")
        with suppress(httpx.HTTPError):
            scheme = "https" if certificate else "http"
            httpx.get(f"{scheme}://127.0.0.1:{front}/healthz", timeout=1, verify=False)
            return balancer
        time.sleep(0.1)
    balancer.stop()
    raise RuntimeError("nginx did not start")


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (a browser under test is told to accept it)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
