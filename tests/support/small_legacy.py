"""A tiny legacy database and mapping written by hand, for pipeline tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

MAPPING = """
source: tiny
description: a hand-written legacy schema for tests
streams:
  clients:
    entity: Person
    table: CLIENT
    key: CLIENT_ID
    cursor: LAST_UPDATED
    collections:
      addresses: {table: CLIENT_ADDRESS, foreign_key: CLIENT_ID, order_by: ["START_DATE desc"]}
    fields:
      names[0].family: {from: SURNAME, transform: [trim, title], required: true}
      names[0].given: {from: FORENAMES, transform: [trim, split, title]}
      birth_date: {from: DOB, transform: [{date: "%d/%m/%Y"}]}
      sex: {from: GENDER, transform: [trim, upper], map: {M: male, F: female}, on_unmapped: quarantine}
      nhs_number: {from: NHS_NO, transform: [digits_only]}
      nhs_number_status: {from: NHS_VERIFIED, map: {Y: "01", N: "02"}, on_unmapped: default}
      identifiers[0].system: {value: tiny}
      identifiers[0].value: {from: CLIENT_ID, transform: [string]}
      addresses:
        each: addresses
        fields:
          text: {from: [HOUSE_NO, STREET, POSTCODE], join: ", "}
          postcode: {from: POSTCODE, transform: [trim, upper]}
          start: {from: START_DATE, transform: [{date: "%d/%m/%Y"}]}
  involvements:
    entity: Episode
    table: INVOLVEMENT
    key: INV_ID
    cursor: LAST_UPDATED
    fields:
      person_id: {ref: clients, from: CLIENT_ID}
      service_area: {from: SERVICE, map: {CSC: childrens, ASC: adults}}
      kind: {from: INV_TYPE, transform: [trim]}
      start: {from: START_DT, transform: [{date: "%d/%m/%Y"}], required: true}
      end: {from: END_DT, transform: [{date: "%d/%m/%Y"}]}
      team: TEAM_CODE
"""

SCHEMA = [
    """CREATE TABLE CLIENT (CLIENT_ID INTEGER PRIMARY KEY, FORENAMES TEXT, SURNAME TEXT, DOB TEXT,
       GENDER TEXT, NHS_NO TEXT, NHS_VERIFIED TEXT, LAST_UPDATED DATETIME)""",
    """CREATE TABLE CLIENT_ADDRESS (ADDRESS_ID INTEGER PRIMARY KEY, CLIENT_ID INTEGER, HOUSE_NO TEXT,
       STREET TEXT, POSTCODE TEXT, START_DATE TEXT, LAST_UPDATED DATETIME)""",
    """CREATE TABLE INVOLVEMENT (INV_ID INTEGER PRIMARY KEY, CLIENT_ID INTEGER, SERVICE TEXT, INV_TYPE TEXT,
       START_DT TEXT, END_DT TEXT, TEAM_CODE TEXT, LAST_UPDATED DATETIME)""",
]


def make_legacy(path: Path) -> str:
    """Create the tiny legacy database with two good people, one duplicate and some dirt."""
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    with engine.begin() as conn:
        for stmt in SCHEMA:
            conn.execute(text(stmt))
        conn.execute(text(
            "INSERT INTO CLIENT VALUES (:id, :fn, :sn, :dob, :g, :nhs, :v, :lu)"), [
            {"id": 1, "fn": " ann  marie", "sn": "HALE ", "dob": "01/02/1950", "g": "F",
             "nhs": "943 476 5919", "v": "Y", "lu": "2024-01-01 09:00:00"},
            {"id": 2, "fn": "Tom", "sn": "Hale", "dob": "03/04/2012", "g": "m", "nhs": None, "v": None,
             "lu": "2024-01-01 09:00:00"},
            {"id": 3, "fn": "Ann", "sn": "Hale", "dob": "01/02/1950", "g": "F", "nhs": "9434765919", "v": "Y",
             "lu": "2024-01-02 09:00:00"},
            {"id": 4, "fn": "Bad", "sn": "Date", "dob": "31/02/2010", "g": "F", "nhs": None, "v": None,
             "lu": "2024-01-02 09:00:00"},
            {"id": 5, "fn": "Bad", "sn": "Check", "dob": "01/01/1980", "g": "M", "nhs": "9434765918", "v": "N",
             "lu": "2024-01-02 09:00:00"},
            {"id": 6, "fn": "No", "sn": "  ", "dob": "01/01/1980", "g": "M", "nhs": None, "v": None,
             "lu": "2024-01-02 09:00:00"},
            {"id": 7, "fn": "Odd", "sn": "Code", "dob": "01/01/1980", "g": "Q", "nhs": None, "v": None,
             "lu": "2024-01-02 09:00:00"},
        ])
        conn.execute(text("INSERT INTO CLIENT_ADDRESS VALUES (:id, :c, :h, :s, :p, :sd, :lu)"), [
            {"id": 1, "c": 1, "h": "14", "s": "High Street", "p": "ls1 4ap", "sd": "01/01/2000",
             "lu": "2024-01-01 09:00:00"},
            {"id": 2, "c": 2, "h": "14", "s": "High Street", "p": "LS1 4AP", "sd": "01/01/2012",
             "lu": "2024-01-01 09:00:00"},
        ])
        conn.execute(text("INSERT INTO INVOLVEMENT VALUES (:id, :c, :s, :t, :sd, :ed, :tc, :lu)"), [
            {"id": 10, "c": 2, "s": "CSC", "t": "CIN", "sd": "01/03/2020", "ed": None, "tc": "CIN-N",
             "lu": "2024-01-01 09:00:00"},
            {"id": 11, "c": 1, "s": "ASC", "t": "LTS", "sd": "01/03/2021", "ed": "01/02/2021", "tc": "ASC-E",
             "lu": "2024-01-01 09:00:00"},
            {"id": 12, "c": 4, "s": "CSC", "t": "CIN", "sd": "01/03/2020", "ed": None, "tc": "CIN-N",
             "lu": "2024-01-01 09:00:00"},
            {"id": 13, "c": 3, "s": "ASC", "t": "LTS", "sd": "05/06/2022", "ed": None, "tc": "ASC-E",
             "lu": "2024-01-01 09:00:00"},
        ])
    engine.dispose()
    return url
