FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY framewatch ./framewatch
COPY ingest ./ingest
COPY workers ./workers
COPY schemas ./schemas
RUN pip install --no-cache-dir . && useradd --system --uid 10001 framewatch
USER framewatch
ENV FRAMEWATCH_HOST=0.0.0.0
# 8080: callbacks (public); 8090: admin (bind it with FRAMEWATCH_ADMIN_HOST, keep it internal); 8081: workers
EXPOSE 8080 8090 8081
ENTRYPOINT ["framewatch"]
CMD ["ingest"]
