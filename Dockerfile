FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY framewatch ./framewatch
COPY ingest ./ingest
COPY workers ./workers
COPY schemas ./schemas
RUN pip install --no-cache-dir . && useradd --system framewatch
USER framewatch
ENV FRAMEWATCH_HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["framewatch"]
CMD ["ingest"]
