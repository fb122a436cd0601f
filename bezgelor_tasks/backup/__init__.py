"""Backups of the Bezgelor database: pg_dump through `fly proxy`, manifests, verification, restore, retention."""
