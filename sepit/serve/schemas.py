"""Request and response bodies (pydantic). OpenAI fields keep their names; SEPIT adds ``protein`` and
``answer_choices`` to chat requests (OpenAI clients send them with ``extra_body``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

StructureFormat = Literal["pdb", "cif", "mmcif", "pdb.gz", "cif.gz", "mmcif.gz"]


class StructureUpload(BaseModel):
    """A structure file's content: ``encoding`` "text" (PDB/mmCIF text) or "base64" (needed for gzip)."""

    model_config = ConfigDict(extra="forbid")
    content: str = Field(min_length=1)
    format: StructureFormat
    encoding: Literal["text", "base64"] = "text"


class ProteinField(BaseModel):
    """The protein: ``sequence`` and/or ``structure`` (with a structure only, its chain's residues)."""

    model_config = ConfigDict(extra="forbid")
    sequence: str | None = None
    structure: StructureUpload | None = None
    chain: str | None = Field(default=None, max_length=4)


class AskRequest(ProteinField):
    question: str = Field(min_length=1)
    choices: list[str] | None = None
    max_new_tokens: int | None = Field(default=None, ge=1)
    category: str | None = Field(default=None, max_length=64)  # annotation shown from each hit (retrieval)
    retrieval: bool = True  # false: answer without evidence even when the server has an index


class AskResponse(BaseModel):
    answer: str
    choice: str | None = None
    probabilities: dict[str, float] | None = None
    structure: dict = Field(default_factory=dict)
    protein: dict = Field(default_factory=dict, description="residues given; cropped (bool) and cropped_to (the "
                          "residues the model saw) when longer than the model's max_residues")
    evidence: list[dict] | None = None  # with an index: the hits shown (accession, identity, coverage, ...)
    citations: list[str] | None = None
    unsupported_citations: list[str] | None = None
    evidence_note: str | None = None


class ContentPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One turn; a user turn may carry the conversation's ``protein`` (SEPIT extension)."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    protein: ProteinField | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI ``/v1/chat/completions`` request. The question is the last user message; other OpenAI fields
    are accepted and ignored. ``temperature`` 0 or absent = greedy decoding."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int = Field(default=1, ge=1, le=1)
    protein: ProteinField | None = None
    answer_choices: list[str] | None = None
    category: str | None = Field(default=None, max_length=64)  # SEPIT retrieval: annotation shown per hit
    retrieval: bool = True  # SEPIT: false answers without evidence even when the server has an index

    def question(self) -> str:
        users = [m for m in self.messages if m.role == "user"]
        return users[-1].text() if users else ""
