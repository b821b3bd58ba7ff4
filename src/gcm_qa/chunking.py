"""Cut a laid-out document into chunks that never straddle two sections.

Within a section, LangChain's RecursiveCharacterTextSplitter does the packing: it prefers
paragraph breaks, then line breaks (table rows), then sentence ends, and carries an overlap. It
reports each piece's start offset, so every chunk keeps exact character offsets into the cleaned
text, which is what lets a citation point at the passage it quotes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcm_qa import gcm
from gcm_qa.profiles import EMPTY, Profile
from gcm_qa.structure import Layout
from gcm_qa.types import Chunk, DocMeta

if TYPE_CHECKING:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

SEPARATORS = ["\n\n", "\n", r"(?<=[.!?;])\s+", r"(?<=,)\s+", " ", ""]


def make_splitter(chunk_chars: int, overlap_chars: int) -> RecursiveCharacterTextSplitter:
    # imported here: only a build chunks, and the import (langchain-core with it) is 0.1 s of every 'ask'
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_chars,
        chunk_overlap=min(overlap_chars, chunk_chars // 2),
        separators=SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",  # joined back with "": pieces stay exact substrings
        add_start_index=True,
        strip_whitespace=True,
    )


def chunk_document(
    meta: DocMeta, doc: Layout, chunk_chars: int, overlap_chars: int, profile: Profile = EMPTY
) -> list[Chunk]:
    """``profile``: the document's thematic areas, for tagging (see :func:`gcm_qa.gcm.tag`)."""
    splitter = make_splitter(chunk_chars, overlap_chars)
    chunks: list[Chunk] = []
    for n, section in enumerate(doc.sections):
        body = doc.text[section.start : section.end]
        if not body.strip():
            continue
        for piece in splitter.create_documents([body]):
            text = piece.page_content
            start = section.start + int(piece.metadata["start_index"])
            end = start + len(text)
            if doc.text[start:end] != text:  # splitter could not locate the piece: search for it
                found = doc.text.find(text, section.start, section.end)
                if found < 0:
                    continue
                start, end = found, found + len(text)
            page_start, page_end = doc.page_range(start, end)
            if page_start is None and n < len(doc.section_pages):
                page_start, page_end = doc.section_pages[n]  # from the table of contents
            areas, objectives = gcm.tag(text, section.path, profile)
            chunks.append(
                Chunk(
                    chunk_id=f"{meta.doc_id}:{len(chunks)}",
                    doc_id=meta.doc_id,
                    title=meta.title,
                    kind=meta.kind,
                    author=meta.author,
                    language=meta.language,
                    stakeholder=meta.stakeholder,
                    section=list(section.path),
                    page_start=page_start,
                    page_end=page_end,
                    start=start,
                    end=end,
                    text=text,
                    areas=areas,
                    objectives=objectives,
                )
            )
    return chunks
