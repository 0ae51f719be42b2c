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


def nginx_config(folder: Path, fronts: dict[str, int], replicas: dict[str, list[int]]) -> str:
    """One listening port per service, each in front of that service's replicas."""
    temp = {name: folder / f"nginx-{name}" for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    upstreams, servers = [], []
    for name, front in fronts.items():
        members = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=3s;" for port in replicas[name])
        upstreams.append(f"    upstream {name} {{\n{members}\n        keepalive 16;\n    }}")
        servers.append(f"""    server {{
        listen 127.0.0.1:{front};
        location = /metrics {{ return 404; }}
        location / {{ proxy_pass http://{name}; }}
    }}""")
    user = "user root root;\n" if os.geteuid() == 0 else ""
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
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_next_upstream error timeout http_502 non_idempotent;
    proxy_next_upstream_tries 2;
    proxy_connect_timeout 2s;
    proxy_read_timeout 60s;
    proxy_buffering off;
{chr(10).join(upstreams)}
{chr(10).join(servers)}
}}
"""


def start_nginx(folder: Path, fronts: dict[str, int], replicas: dict[str, list[int]]) -> LoadBalancer:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx is needed (Debian package nginx-light; `python3 dev.py test` installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(nginx_config(folder, fronts, replicas))
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
            httpx.get(f"http://127.0.0.1:{front}/healthz", timeout=1)
            return balancer
        time.sleep(0.1)
    balancer.stop()
    raise RuntimeError("nginx did not start")
