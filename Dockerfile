# syntax=docker/dockerfile:1
#
# kvferry image: kvferryd, kvferryctl and libkvferry on Debian 12.
#
#   docker build -t kvferry .                          libfabric from Debian
#   docker build --build-arg FLAVOR=efa -t kvferry:efa .
#                                     libfabric from the AWS EFA installer
#   docker build --build-arg WITH_CUDA=0 ...           no GPU support
#
# The build stage runs the project's own `make deps && make`; the runtime
# stages carry only the shared libraries kvferryd links. At start the
# entrypoint puts /opt/amazon/efa/lib first on LD_LIBRARY_PATH when it
# exists, so an image or node that provides the EFA libfabric wins over
# Debian's.

ARG DEBIAN_IMAGE=debian:12
ARG RUNTIME_IMAGE=debian:12-slim
# debian (libfabric1 from Debian: tcp, shm, verbs...) or efa
ARG FLAVOR=debian

############################################################ build
FROM ${DEBIAN_IMAGE} AS build
# 1: build with the CUDA runtime (cudart_static) from NVIDIA's Debian 12
# repository, so kvferryd can open the engine's CUDA IPC handles.
ARG WITH_CUDA=1
ARG CUDA_VERSION=13-0
ARG CUDA_REPO=https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends make ca-certificates curl \
 && if [ "$WITH_CUDA" = 1 ]; then \
      curl -fsSLo /tmp/cuda-keyring.deb "$CUDA_REPO/cuda-keyring_1.1-1_all.deb" \
      && dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb \
      && apt-get update \
      && apt-get install -y --no-install-recommends \
           "cuda-minimal-build-$CUDA_VERSION" \
      && ln -sfn "/usr/local/cuda-$(echo "$CUDA_VERSION" | tr - .)" \
           /usr/local/cuda; \
    fi \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make deps \
 && make -j2 MODE=release BUILD=build/release all \
 && rm -rf /var/lib/apt/lists/*

############################################################ runtimes
FROM ${RUNTIME_IMAGE} AS runtime-debian
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libfabric1 libnng1 liburing2 libprotobuf-c1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# The AWS EFA installer puts its libfabric (with the efa provider built
# against the instance's rdma-core) in /opt/amazon/efa. --skip-kmod: the
# kernel module belongs to the node, not the image.
FROM ${RUNTIME_IMAGE} AS runtime-efa
ARG EFA_INSTALLER_VERSION=latest
ARG EFA_URL=https://efa-installer.amazonaws.com
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates curl libnng1 liburing2 libprotobuf-c1 \
 && curl -fsSL "$EFA_URL/aws-efa-installer-$EFA_INSTALLER_VERSION.tar.gz" \
      | tar -xz -C /tmp \
 && cd /tmp/aws-efa-installer \
 && ./efa_installer.sh -y --skip-kmod --skip-limit-conf --no-verify \
 && cd / && rm -rf /tmp/aws-efa-installer \
 && echo /opt/amazon/efa/lib > /etc/ld.so.conf.d/000-efa.conf \
 && ldconfig \
 && apt-get purge -y curl && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*

############################################################ final
# hadolint ignore=DL3006
FROM runtime-${FLAVOR} AS runtime
COPY --from=build /src/build/release/bin/kvferryd /usr/local/bin/kvferryd
COPY --from=build /src/build/release/bin/kvferryctl /usr/local/bin/kvferryctl
COPY --from=build /src/build/release/libkvferry.so /usr/local/lib/libkvferry.so.0
COPY --from=build /src/build/release/libkvferry.a /usr/local/lib/libkvferry.a
COPY --from=build /src/build/release/include/kvferry.h /usr/local/include/kvferry.h
COPY k8s/image/entrypoint.sh /usr/local/bin/kvferry-entrypoint
RUN ln -s libkvferry.so.0 /usr/local/lib/libkvferry.so \
 && ldconfig \
 && mkdir -p /run/kvferry && chown 1000:1000 /run/kvferry
# The pod runs both containers as 1000 (k8s/base/deployment.yaml).
USER 1000:1000
EXPOSE 18515 9464
ENV KVFERRY_ENGINE_SOCKET=/run/kvferry/engine.sock \
    KVFERRY_CONTROL_URL=ipc:///run/kvferry/control.sock
ENTRYPOINT ["/usr/local/bin/kvferry-entrypoint"]
CMD ["kvferryd"]
