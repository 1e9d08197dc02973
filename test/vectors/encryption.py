#!/usr/bin/env python3
"""Independent implementation of the nara-backup encryption format v1
(docs/ENCRYPTION.md), used to compute the vectors in encryption.json that
test/io.test.ts checks src/io/encrypt.ts against. Uses Python's hashlib/hmac
for HKDF and the `cryptography` package's IETF ChaCha20-Poly1305, with
HChaCha20 written out here (XChaCha20 = HChaCha20 subkey + IETF ChaCha20).
Run: python3 test/vectors/encryption.py > test/vectors/encryption.json
"""
import hashlib, hmac, json, os, struct
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

def hkdf(ikm, salt, info, length):
    prk = hmac.new(salt if salt else b"\0" * 32, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]

def rotl(v, c):
    return ((v << c) & 0xffffffff) | (v >> (32 - c))

def qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 7)

def hchacha20(key, nonce16):
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        qr(s, 0, 4, 8, 12); qr(s, 1, 5, 9, 13); qr(s, 2, 6, 10, 14); qr(s, 3, 7, 11, 15)
        qr(s, 0, 5, 10, 15); qr(s, 1, 6, 11, 12); qr(s, 2, 7, 8, 13); qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))

def xchacha_seal(key, nonce24, aad, plain):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0" + nonce24[16:], plain, aad)

def encrypt(seed, salt, prefix, log2, plain):
    soul_id = hkdf(seed, b"", b"nara-backup:soul-id:v1", 8)
    okm = hkdf(seed, salt, b"nara-backup:encrypt:v1", 64)
    data_key, check_key = okm[:32], okm[32:]
    head = b"NARABKE1" + bytes([1, log2, 0, 0]) + salt + prefix + soul_id
    kc = hmac.new(check_key, head, hashlib.sha256).digest()[:16]
    header = head + kc
    size = 1 << log2
    chunks = [plain[i:i + size] for i in range(0, len(plain), size)] or [b""]
    out = header
    for i, c in enumerate(chunks):
        final = i == len(chunks) - 1
        out += xchacha_seal(data_key, prefix + struct.pack(">Q", i), header + bytes([1 if final else 0]), c)
    return dict(soul_id=soul_id.hex(), data_key=data_key.hex(), check_key=check_key.hex(), key_check=kc.hex(), header=header.hex(), chunks=len(chunks), ciphertext=out)

souls = {v["name"]: v for v in json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/vectors/souls.json")))["valid"]}
vectors = []
for name, plain_desc, plain in [
    ("alice", "empty", b""),
    ("alice", "'hello nara\\n'", b"hello nara\n"),
    ("bob", "2500 bytes: i*7 mod 251 for i in 0..2499", bytes((i * 7) % 251 for i in range(2500))),
    ("bob", "2048 bytes: i mod 256 (exactly two chunks)", bytes(i % 256 for i in range(2048))),
]:
    seed = bytes.fromhex(souls[name]["seed_hex"])
    salt = bytes(range(16))
    prefix = bytes(range(0x10, 0x20))
    v = encrypt(seed, salt, prefix, 10, plain)
    ct = v.pop("ciphertext")
    v.update(soul=name, seed=seed.hex(), salt=salt.hex(), nonce_prefix=prefix.hex(), chunk_log2=10, plaintext=plain_desc,
             plaintext_hex=plain.hex() if len(plain) <= 64 else None,
             ciphertext_hex=ct.hex() if len(ct) <= 200 else None,
             ciphertext_length=len(ct), ciphertext_sha256=hashlib.sha256(ct).hexdigest())
    vectors.append(v)
print(json.dumps({"description": __doc__.strip().splitlines()[0], "vectors": vectors}, indent=2))
