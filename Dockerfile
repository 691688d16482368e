FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY syncconsole ./syncconsole
COPY sync ./sync
COPY couplings ./couplings
COPY errors ./errors
COPY demo ./demo
RUN pip install --no-cache-dir .

COPY . .
RUN SECRET_KEY=collectstatic DATABASE_URL=postgresql://unused/unused \
    python manage.py collectstatic --noinput

RUN useradd --system --home /app syncconsole && mkdir -p /var/lib/syncconsole-metrics \
    && chown -R syncconsole /app /var/lib/syncconsole-metrics
USER syncconsole
EXPOSE 8000
CMD ["gunicorn", "syncconsole.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
