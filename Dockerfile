# An example image for a mecsa deployment (workers, web service, submitting scans): see docs/scale-out.md.
# Untested here: the development machine has no Docker engine. Build: docker build -t mecsa .
FROM python:3.11-slim-bookworm

# No compilers needed: every dependency ships wheels (psycopg[binary] included).
ENV PYTHONDONTWRITEBYTECODE=0 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# A regular install compiles the bytecode once (an editable one would recompile in every process).
RUN pip install . && rm -rf /src

# Run as an unprivileged user: probes need no privileges (outgoing TCP 25, 443 and DNS only).
RUN useradd --create-home --uid 10001 mecsa
USER mecsa
WORKDIR /home/mecsa
ENTRYPOINT ["mecsa"]
CMD ["--help"]
