// Storage adapter for node-oidc-provider that keeps every model in Redis.
//
// Each stored object is one hash under `oidc:<Model>:<id>` with the JSON payload
// in field `p` and, once consumed, the consumption time in field `c`. Three kinds
// of index point at objects: `oidc:uid:<uid>` and `oidc:usercode:<code>` hold an
// id, and `oidc:grant:<grantId>` is a set of the keys issued under that grant so
// that revokeByGrantId can delete them all. Every key gets the object's TTL.

import Redis from 'ioredis';

const PREFIX = 'oidc';

// Redis 6.2 has no EXPIRE ... GT, so a script only ever lengthens an index's TTL.
const EXTEND_TTL = `
if redis.call('ttl', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('expire', KEYS[1], ARGV[1])
end
return 1`;

export function connectRedis(url) {
  const redis = new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 2 });
  redis.defineCommand('extendTtl', { numberOfKeys: 1, lua: EXTEND_TTL });
  return redis;
}

export function adapterFor(redis) {
  return class RedisAdapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${PREFIX}:${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const tx = redis.multi();
      tx.del(key);
      tx.hset(key, 'p', JSON.stringify(payload));
      if (expiresIn) tx.expire(key, expiresIn);
      if (payload.grantId) {
        const grantKey = `${PREFIX}:grant:${payload.grantId}`;
        tx.sadd(grantKey, key);
        // The index lives as long as the longest-lived object it lists.
        if (expiresIn) tx.extendTtl(grantKey, expiresIn);
      }
      if (payload.uid) {
        tx.set(`${PREFIX}:uid:${payload.uid}`, id, ...(expiresIn ? ['EX', expiresIn] : []));
      }
      if (payload.userCode) {
        const userCodeKey = `${PREFIX}:usercode:${payload.userCode}`;
        tx.set(userCodeKey, id, ...(expiresIn ? ['EX', expiresIn] : []));
      }
      await tx.exec();
    }

    async find(id) {
      const [payload, consumed] = await redis.hmget(this.key(id), 'p', 'c');
      if (!payload) return undefined;
      const found = JSON.parse(payload);
      if (consumed) found.consumed = Number(consumed);
      return found;
    }

    async findByUid(uid) {
      const id = await redis.get(`${PREFIX}:uid:${uid}`);
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode) {
      const id = await redis.get(`${PREFIX}:usercode:${userCode}`);
      return id ? this.find(id) : undefined;
    }

    async consume(id) {
      await redis.hset(this.key(id), 'c', Math.floor(Date.now() / 1000));
    }

    async destroy(id) {
      await redis.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const grantKey = `${PREFIX}:grant:${grantId}`;
      const members = await redis.smembers(grantKey);
      await redis.del(grantKey, ...members);
    }
  };
}
