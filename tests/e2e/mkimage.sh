#!/usr/bin/env bash
# Makes an OCI image archive holding a static busybox, for `ctr images import`.
#
#   mkimage.sh OUT.tar NAME CMD_JSON
#
# NAME is the full reference the image is imported as (docker.io/library/x:1),
# CMD_JSON the image's Cmd as a JSON array. The single layer is the same for
# every image: /bin/busybox and a symlink per applet, /etc/passwd and /etc/group
# for root, and empty /dev, /proc, /sys, /tmp, /root, /mnt. Made from the
# host's static busybox (Debian's busybox-static), so no registry is needed.
set -euo pipefail

out=$1 name=$2 cmd=$3
busybox=${NRI_E2E_BUSYBOX:-/bin/busybox}
if ! [ -x "$busybox" ]; then
  echo "mkimage: $busybox is missing (install Debian's busybox-static)" >&2
  exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "mkimage: $busybox is dynamically linked; a static busybox is needed (busybox-static)" >&2
  exit 1
fi

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/nri-e2e-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,dev,proc,sys,tmp,root,mnt,etc} "$work"/oci/blobs/sha256
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
# One symlink per applet (python: a few hundred `ln` processes cost seconds).
"$busybox" --list | python3 -c '
import os, sys
for applet in sys.stdin.read().split():
    if applet != "busybox":
        os.symlink("busybox", os.path.join(sys.argv[1], applet))
' "$root/bin"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -C "$root" -cf "$work/layer.tar" .

blob() { # FILE MEDIA_TYPE -> prints a descriptor; stores FILE as a blob
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  cp "$1" "$work/oci/blobs/sha256/$digest"
  printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$digest" "$size"
}

layer=$(blob "$work/layer.tar" application/vnd.oci.image.layer.v1.tar)
diff_id=$(jq -r .digest <<<"$layer")
jq -cn --arg arch "$arch" --arg diff "$diff_id" --argjson cmd "$cmd" '{
  architecture: $arch, os: "linux",
  config: {Cmd: $cmd, Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
           WorkingDir: "/"},
  rootfs: {type: "layers", diff_ids: [$diff]}
}' >"$work/config.json"
config=$(blob "$work/config.json" application/vnd.oci.image.config.v1+json)
jq -cn --argjson config "$config" --argjson layer "$layer" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: $config, layers: [$layer]
}' >"$work/manifest.json"
manifest=$(blob "$work/manifest.json" application/vnd.oci.image.manifest.v1+json)
jq -cn --argjson m "$manifest" --arg name "$name" --arg arch "$arch" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [$m + {platform: {architecture: $arch, os: "linux"},
                   annotations: {"io.containerd.image.name": $name,
                                 "org.opencontainers.image.ref.name": ($name | sub(".*:"; ""))}}]
}' >"$work/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/oci" -cf "$out" .
