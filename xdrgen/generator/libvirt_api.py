"""libvirt's public API names and error domains, read from libvirt's own API description.

libvirt-dev installs ``/usr/share/libvirt/api/libvirt-api.xml`` (and the qemu
and lxc twins): every public function with its name and source module, and
every ``virErrorDomain`` value.  When a driver lacks a function, libvirtd
answers with VIR_ERR_NO_SUPPORT naming the public API its dispatcher called
("this function is not supported by the connection driver: virDomainGetXMLDesc")
in the error domain of that API's module (``VIR_FROM_THIS`` of
libvirt-network.c is VIR_FROM_NETWORK, ...).  The generated server skeleton
answers the same way, so it needs those names: they are read from the XML at
generation time (``--libvirt-api``), never copied into xdrgen.

Which API a procedure's dispatcher calls: the one whose name, compared without
case, is ``vir`` + the procedure name without underscores
(``DOMAIN_GET_XML_DESC`` -> ``virDomainGetXMLDesc``); for the callback-style
event registrations, the same name without ``CALLBACK`` (they register with
``virConnectDomainEventRegisterAny``); the two legacy event registrations go
through the ``...Any`` functions.  Procedures the XML does not list (the
migration steps, which are libvirt-internal functions) keep the capitalised
procedure name in the domain error domain, which is what libvirtd 9.0 says.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from xdrgen.diagnostics import error

#: ``VIR_FROM_THIS`` of each libvirt source module (facts of libvirt's sources,
#: checked against libvirtd 9.0 by tests/hostile/test_libvirt_not_supported.py).
MODULE_ERROR_DOMAINS: Final = {
    "libvirt-domain": "VIR_FROM_DOMAIN",
    "libvirt-host": "VIR_FROM_DOMAIN",
    "libvirt-domain-snapshot": "VIR_FROM_DOMAIN_SNAPSHOT",
    "libvirt-domain-checkpoint": "VIR_FROM_DOMAIN_CHECKPOINT",
    "libvirt-network": "VIR_FROM_NETWORK",
    "libvirt-interface": "VIR_FROM_INTERFACE",
    "libvirt-nodedev": "VIR_FROM_NODEDEV",
    "libvirt-nwfilter": "VIR_FROM_NWFILTER",
    "libvirt-secret": "VIR_FROM_SECRET",
    "libvirt-storage": "VIR_FROM_STORAGE",
    "libvirt-stream": "VIR_FROM_STREAMS",
    "libvirt-qemu": "VIR_FROM_NONE",
    "libvirt-lxc": "VIR_FROM_NONE",
}
#: Procedures whose dispatcher calls a differently named public API.
DISPATCHED_AS: Final = {
    "CONNECT_DOMAIN_EVENT_REGISTER": "virConnectDomainEventRegisterAny",
    "CONNECT_DOMAIN_EVENT_DEREGISTER": "virConnectDomainEventDeregisterAny",
}
#: virErrorDomain values used when the XML does not say (virterror.h facts).
VIR_FROM_DOMAIN: Final = 20
VIR_FROM_NONE: Final = 0


@dataclass(frozen=True)
class ApiFunction:
    name: str
    #: VIR_FROM_* value libvirtd reports this function's errors under.
    error_domain: int


@dataclass
class LibvirtApi:
    """Public functions (by lower-case name) and error domains from libvirt's API XML files."""

    functions: dict[str, tuple[str, str]] = field(default_factory=dict)
    error_domains: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, paths: list[Path]) -> LibvirtApi:
        api = cls()
        for path in paths:
            api._read(path)
        return api

    def _read(self, path: Path) -> None:
        try:
            root = ElementTree.parse(path).getroot()
        except OSError as exc:
            raise error(f"{path}: cannot read libvirt API description: {exc.strerror or exc}") from None
        except ElementTree.ParseError as exc:
            raise error(f"{path}: not libvirt's API XML: {exc}") from None
        if root.tag != "api":
            raise error(f"{path}: not libvirt's API XML (root element <{root.tag}>, expected <api>)")
        for node in root.iter("function"):
            name, module = node.get("name"), node.get("file")
            if name and module:
                self.functions[name.lower()] = (name, module)
        for node in root.iter("enum"):
            name, value = node.get("name"), node.get("value")
            if name and value and name.startswith("VIR_FROM_"):
                try:
                    self.error_domains[name] = int(value, 0)
                except ValueError:
                    raise error(f"{path}: enum {name} has a non-integer value {value!r}") from None

    def _domain(self, module: str) -> int:
        constant = MODULE_ERROR_DOMAINS.get(module)
        if constant is None:
            return VIR_FROM_NONE
        return self.error_domains.get(constant, VIR_FROM_DOMAIN if constant == "VIR_FROM_DOMAIN" else VIR_FROM_NONE)

    def function_for(self, procedure: str) -> ApiFunction | None:
        """The public API the dispatcher of ``procedure`` (``DOMAIN_GET_XML_DESC``) calls, if listed."""
        procedure = procedure.upper()
        candidates = [DISPATCHED_AS[procedure]] if procedure in DISPATCHED_AS else []
        words = procedure.split("_")
        candidates.append("vir" + "".join(words))
        if "CALLBACK" in words:
            candidates.append("vir" + "".join(w for w in words if w != "CALLBACK"))
        for candidate in candidates:
            found = self.functions.get(candidate.lower())
            if found is not None:
                return ApiFunction(found[0], self._domain(found[1]))
        return None


def capitalised_name(procedure: str) -> str:
    """``vir`` + the procedure name in CamelCase: libvirt-internal functions are named so."""
    return "vir" + "".join(w.capitalize() for w in procedure.split("_"))


def unsupported_answer(procedure: str, api: LibvirtApi | None) -> ApiFunction:
    """API name and error domain of libvirtd's VIR_ERR_NO_SUPPORT answer for ``procedure``."""
    procedure = procedure.upper()
    if api is not None:
        found = api.function_for(procedure)
        if found is not None:
            return found
    return ApiFunction(DISPATCHED_AS.get(procedure) or capitalised_name(procedure), VIR_FROM_DOMAIN)


__all__ = ["LibvirtApi", "ApiFunction", "MODULE_ERROR_DOMAINS", "unsupported_answer", "capitalised_name"]
