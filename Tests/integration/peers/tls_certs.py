"""Certificates made at test time (PyPI `cryptography`): a test CA, server certificates
signed by it for 127.0.0.1 and localhost, an expired one, one for another host, and one
from a second CA that avr-core is not told to trust.

    certs = TestCertificates(tmp_dir)
    certs.ca                      # PEM path: give it to avr-core as TLS_CA_FILE
    certs.good                    # (cert, key) PEM paths for a TLS server
    certs.server_context("good")  # an ssl.SSLContext serving that pair
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _make_ca(label: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(label)).issuer_name(_name(label))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _make_leaf(ca, ca_key, names: list[str], ips: list[str], expired: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        start, end = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
    else:
        start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(_name(names[0] if names else ips[0]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


class TestCertificates:
    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        ca, ca_key = _make_ca("avr-core test CA")
        other_ca, other_key = _make_ca("untrusted test CA")
        self.ca = self._write_cert("ca.pem", ca)
        local = (["localhost"], ["127.0.0.1"])
        self.good = self._write_pair("good", *_make_leaf(ca, ca_key, *local))
        self.expired = self._write_pair("expired", *_make_leaf(ca, ca_key, *local, expired=True))
        self.wrong_host = self._write_pair("wrong-host", *_make_leaf(ca, ca_key, ["sts.example.com"], []))
        self.untrusted = self._write_pair("untrusted", *_make_leaf(other_ca, other_key, *local))

    def _write_cert(self, name: str, cert) -> str:
        path = self.dir / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return str(path)

    def _write_pair(self, label: str, cert, key) -> tuple[str, str]:
        key_path = self.dir / f"{label}-key.pem"
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return self._write_cert(f"{label}.pem", cert), str(key_path)

    def server_context(self, which: str = "good") -> ssl.SSLContext:
        cert, key = getattr(self, which.replace("-", "_"))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context
