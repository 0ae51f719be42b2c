"""Open311's services: our report categories, and the two attributes we read (in progress, danger to life)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from burgermelding_shared.categories import CATEGORIES, Category
from burgermelding_shared.errors import ServiceError
from report_intake import texts

# The attributes every service has: they make a report urgent (burgermelding_shared.urgency), and then its answer
# says to call 112, as the app's does.
ATTRIBUTES: list[tuple[str, dict[str, str]]] = [
    (
        "in_progress",
        {
            "en": "Is it happening now? " + texts.CALL_112["en"],
            "nl": "Is het nu aan de gang? " + texts.CALL_112["nl"],
        },
    ),
    (
        "danger_to_life",
        {
            "en": "Is someone's life in danger? " + texts.CALL_112["en"],
            "nl": "Is er levensgevaar? " + texts.CALL_112["nl"],
        },
    ),
]
YES_NO = {"en": ("Yes", "No"), "nl": ("Ja", "Nee")}


class Open311Service(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_code": "burglary",
                    "service_name": "Burglary",
                    "description": "Someone is breaking in or has broken in",
                    "metadata": True,
                    "type": "realtime",
                    "keywords": "burglary",
                    "group": "Bezitsaantasting",
                }
            ]
        }
    )

    service_code: str
    service_name: str
    description: str
    metadata: bool  # true: every service has attributes (GET services/{code})
    type: Literal["realtime"]
    keywords: str
    group: str


class Open311AttributeValue(BaseModel):
    key: Literal["true", "false"]
    name: str


class Open311Attribute(BaseModel):
    variable: bool
    code: str
    datatype: Literal["singlevaluelist"]
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[Open311AttributeValue]


class Open311ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Open311Attribute]


def service(category: Category, language: str) -> dict[str, Any]:
    nl = language == "nl"
    return {
        "service_code": category.code,
        "service_name": category.name_nl if nl else category.name_en,
        "description": category.hint_nl if nl else category.hint_en,
        "metadata": True,
        "type": "realtime",
        "keywords": category.apco.lower(),
        "group": category.lmc.split(" / ")[0],
    }


def service_list(language: str) -> list[dict[str, Any]]:
    return [service(c, language) for c in CATEGORIES.values()]


def definition(service_code: str, language: str) -> dict[str, Any]:
    if service_code not in CATEGORIES:
        raise unknown_service(service_code)
    yes, no = YES_NO[language]
    return {
        "service_code": service_code,
        "attributes": [
            {
                "variable": True,
                "code": code,
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": None,
                "order": order,
                "description": descriptions[language],
                "values": [{"key": "true", "name": yes}, {"key": "false", "name": no}],
            }
            for order, (code, descriptions) in enumerate(ATTRIBUTES, start=1)
        ],
    }


def unknown_service(service_code: str) -> ServiceError:
    return ServiceError(
        404,
        "unknown_service",
        f"there is no service {service_code[:40]!r}; services.json lists them",
        detail_nl=f"er is geen dienst {service_code[:40]!r}; services.json noemt ze",
    )
