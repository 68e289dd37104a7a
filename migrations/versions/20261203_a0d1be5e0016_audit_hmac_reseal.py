"""audit trail: re-seal every chain with HMAC-SHA-256 under AUDIT_KEY, once, and record it in the chain

Revision ID: a0d1be5e0016
Revises: ac0c1a7e0015
Create Date: 2026-12-03 09:30:00.000000

"""
import hashlib
import hmac
import json
import logging
from datetime import datetime, timezone

from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a0d1be5e0016'
down_revision = 'ac0c1a7e0015'
branch_labels = None
depends_on = None

log = logging.getLogger('alembic.runtime.migration')
GENESIS = '0' * 64
PAGE = 2000
LABEL = 'migration a0d1be5e0016 (audit trail re-sealed)'

# Copies of compliance.audit.services' canonical form and hashed fields as they were when this ran: a
# migration must not change with later code.
entries = sa.table(
    'audit_entries', sa.column('id', sa.Integer), sa.column('organisation_id', sa.Integer),
    sa.column('seq', sa.Integer), sa.column('at', sa.DateTime(timezone=True)), sa.column('site_id', sa.Integer),
    sa.column('actor_user_id', sa.Integer), sa.column('actor_api_key_id', sa.Integer),
    sa.column('actor_label', sa.String), sa.column('action', sa.String), sa.column('entity_type', sa.String),
    sa.column('entity_id', sa.String), sa.column('before', sa.JSON), sa.column('after', sa.JSON),
    sa.column('prev_hash', sa.String), sa.column('hash', sa.String))
heads = sa.table('audit_heads', sa.column('organisation_id', sa.Integer), sa.column('seq', sa.Integer),
                 sa.column('hash', sa.String))


def _utc(value):
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _fields(row, prev_hash):
    return {'organisation_id': row['organisation_id'], 'seq': row['seq'], 'at': _utc(row['at']).isoformat(),
            'site_id': row['site_id'], 'actor_user_id': row['actor_user_id'],
            'actor_api_key_id': row['actor_api_key_id'], 'actor_label': row['actor_label'], 'action': row['action'],
            'entity_type': row['entity_type'], 'entity_id': str(row['entity_id'] or ''), 'before': row['before'],
            'after': row['after'], 'prev_hash': prev_hash}


def _canonical(fields):
    return json.dumps(fields, sort_keys=True, separators=(',', ':'), ensure_ascii=False, default=str).encode('utf-8')


def _sha256(fields):
    return hashlib.sha256(_canonical(fields)).hexdigest()


def _hmac(key):
    base = hmac.new(key.encode('utf-8'), digestmod=hashlib.sha256)

    def digest(fields):
        mac = base.copy()
        mac.update(_canonical(fields))
        return mac.hexdigest()

    return digest


def _key_id(key):
    return hmac.new(key.encode('utf-8'), b'compliance audit key id', hashlib.sha256).hexdigest()[:16]


def _audit_key():
    from flask import current_app

    key = current_app.config.get('AUDIT_KEY')
    if not key:
        raise RuntimeError('AUDIT_KEY is not set: run this migration through `flask --app wsgi db upgrade`')
    return key


def _reseal(bind, old_hash, new_hash, before, after):
    """Check each chain under the old hash, recompute it under the new one, and append an entry saying so
    (with the old head, and whether the old chain held: a chain already broken is re-sealed as it is, and the
    entry says where it broke, so that the re-seal launders nothing silently)."""
    now = datetime.now(timezone.utc)
    stored_at = now.replace(tzinfo=None) if bind.dialect.name == 'sqlite' else now
    org_ids = sorted(set(bind.execute(sa.select(heads.c.organisation_id)).scalars())
                     | set(bind.execute(sa.select(entries.c.organisation_id).distinct()).scalars()))
    for org in org_ids:
        head = bind.execute(sa.select(heads.c.seq, heads.c.hash).where(heads.c.organisation_id == org)).first()
        old_prev, new_prev, expected, broken, last_seq = GENESIS, GENESIS, 1, None, 0
        while True:
            rows = bind.execute(sa.select(entries).where(entries.c.organisation_id == org, entries.c.seq >= expected)
                                .order_by(entries.c.seq, entries.c.id).limit(PAGE)).mappings().all()
            if not rows:
                break
            changes = []
            for row in rows:
                if broken is None:
                    if row['seq'] != expected:
                        broken = f'entry {expected} missing (found {row["seq"]})'
                    elif row['prev_hash'] != old_prev:
                        broken = f'entry {row["seq"]} does not follow the one before it'
                    elif old_hash(_fields(row, row['prev_hash'])) != row['hash']:
                        broken = f'entry {row["seq"]} differs from its hash'
                old_prev = row['hash']
                digest = new_hash(_fields(row, new_prev))
                changes.append({'b_id': row['id'], 'b_prev': new_prev, 'b_hash': digest})
                new_prev, last_seq, expected = digest, row['seq'], row['seq'] + 1
            bind.execute(entries.update().where(entries.c.id == sa.bindparam('b_id'))
                         .values(prev_hash=sa.bindparam('b_prev'), hash=sa.bindparam('b_hash')), changes)
        if broken is None and (head is None or head.seq != last_seq or head.hash != old_prev):
            broken = f'the head says entry {head.seq if head else "nothing"}, the chain ends at {last_seq}'
        record = {'organisation_id': org, 'seq': last_seq + 1, 'at': now, 'site_id': None, 'actor_user_id': None,
                  'actor_api_key_id': None, 'actor_label': LABEL, 'action': 'reseal', 'entity_type': 'audit_entries',
                  'entity_id': '',
                  'before': {**before, 'head_seq': last_seq, 'head': old_prev,
                             'chain': 'intact' if broken is None else f'broken: {broken}'},
                  'after': {**after, 'entries': last_seq}}
        digest = new_hash(_fields(record, new_prev))
        bind.execute(entries.insert().values(**{**record, 'at': stored_at, 'prev_hash': new_prev, 'hash': digest}))
        if head is None:
            bind.execute(heads.insert().values(organisation_id=org, seq=last_seq + 1, hash=digest))
        else:
            bind.execute(heads.update().where(heads.c.organisation_id == org).values(seq=last_seq + 1, hash=digest))
        (log.warning if broken else log.info)(
            'audit trail of organisation %s: %s entries re-sealed (%s → %s); the old chain was %s', org, last_seq,
            before['algorithm'], after['algorithm'], 'intact' if broken is None else f'broken: {broken}')


def upgrade():
    if context.is_offline_mode():
        raise RuntimeError('a0d1be5e0016 re-seals the audit trail with data it reads: run it online')
    key = _audit_key()
    _reseal(op.get_bind(), _sha256, _hmac(key), {'algorithm': 'SHA-256'},
            {'algorithm': 'HMAC-SHA-256', 'key_id': _key_id(key)})


def downgrade():
    # The code before this revision checks plain SHA-256: seal the chains that way again (and say so in them).
    if context.is_offline_mode():
        raise RuntimeError('a0d1be5e0016 re-seals the audit trail with data it reads: run it online')
    key = _audit_key()
    _reseal(op.get_bind(), _hmac(key), _sha256, {'algorithm': 'HMAC-SHA-256', 'key_id': _key_id(key)},
            {'algorithm': 'SHA-256'})
