"""Reads fordeler's metadata and receipts as existing clients do (contract §5, §6).

Clients use xmltodict without namespace processing, so the literal `ns2:` prefix and
unqualified children matter; a namespace-aware stock parser must see the SFTP namespace.
Usage: xmltodict_check.py PATH-TO-fordeler_write_documents_for_test
"""
import subprocess
import sys
import xml.etree.ElementTree as ET

import xmltodict

NS = "{http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types}"
UUID = "5f0c2d8e-1b7a-4c3e-9f10-2a3b4c5d6e7f"


def run(tool, *args):
    out = subprocess.run([tool, *args], check=True, capture_output=True).stdout
    assert out.startswith(b'<?xml version="1.0" encoding="UTF-8"?>'), out[:60]
    return out


def check_metadata(tool):
    raw = run(tool, "metadata", "flis")
    doc = xmltodict.parse(raw)
    trigger = doc["ns2:Trigger"]
    assert trigger["@xmlns:ns2"] == NS[1:-1], trigger
    assert trigger["FileTransferUUID"] == UUID
    fd = trigger["FileDescriptor"]
    assert fd["Recipients"] == "flis", fd
    assert fd["FileName"] == "økonomi_æøå_2026-11-22.csv", fd
    assert fd["SizeInBytes"] == "1048576"
    assert fd["SendersFileId"] == "a<&>\"'b", fd
    assert list(fd) == ["FileName", "SizeInBytes", "Sender", "SendersFileId", "Recipients",
                        "Sha256"], list(fd)
    info = trigger["FileContentDescriptor"]["SFTPDynamicRoutingInfo"]
    assert info["InfRef"] == "FLISOekonomiHent_1", info
    assert info["RouteParameterList"]["RouteParameter"] == ["første", "second"], info
    root = ET.fromstring(raw)
    assert root.tag == NS + "Trigger", root.tag
    assert root.find("FileDescriptor/Recipients").text == "flis"  # children unqualified
    assert root.find("FileDescriptor/FileName").text == "økonomi_æøå_2026-11-22.csv"

    raw = run(tool, "filemetadata", "lis-aarhus")
    assert xmltodict.parse(raw)["ns2:FileMetadata"]["FileDescriptor"]["Recipients"] == "lis-aarhus"
    assert ET.fromstring(raw).tag == NS + "FileMetadata"


def check_receipts(tool):
    raw = run(tool, "receipt")
    receipt = xmltodict.parse(raw)["ns2:TechnicalReceipt"]
    assert receipt["FileTransferUUID"] == UUID
    assert receipt["SendersFileId"] == "a1b2c3"
    assert receipt["Receipt"]["Message"] == "SUCCESS", receipt
    assert "ErrorMessage" not in receipt
    assert ET.fromstring(raw).tag == NS + "TechnicalReceipt"

    raw = run(tool, "error", "2002", "no route for kmd-oekonomi → lis-aarhus in oekonomi")
    receipt = xmltodict.parse(raw)["ns2:TechnicalReceipt"]
    error = receipt["ErrorMessage"]
    assert error["ErrorCode"] == "2002", error
    assert error["ErrorCodeDescription"] == "NO_ROUTE", error
    assert error["ErrorDescription"] == "no route for kmd-oekonomi → lis-aarhus in oekonomi"
    assert "Receipt" not in receipt and "SendersFileId" not in receipt, receipt
    assert ET.fromstring(raw).find("ErrorMessage/ErrorCode").text == "2002"


def main():
    tool = sys.argv[1]
    check_metadata(tool)
    check_receipts(tool)
    print("ok")


if __name__ == "__main__":
    main()
