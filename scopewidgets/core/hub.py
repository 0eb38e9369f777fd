"""Hub access: only when the user asks to download, only the files needed, with clear messages.

`HF_HUB_OFFLINE=1` is respected by huggingface_hub itself (files come from the local cache or not at all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

GATED_HINT = (
    "{repo} is gated or private on the Hugging Face hub (HTTP {status}). Accept its licence on "
    "https://huggingface.co/{repo} while logged in, then authenticate here with `hf auth login` "
    "(or set the HF_TOKEN environment variable) and try again."
)


def _status_of(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


@contextmanager
def hub_errors(repo: str) -> Iterator[None]:
    """Turn hub failures into `PermissionError` (gated: 401/403) or `FileNotFoundError` (missing/offline)."""
    from huggingface_hub import errors

    try:
        yield
    except errors.GatedRepoError as err:
        raise PermissionError(GATED_HINT.format(repo=repo, status=_status_of(err) or 403)) from err
    except errors.RepositoryNotFoundError as err:
        status = _status_of(err)
        if status in (401, 403):
            raise PermissionError(GATED_HINT.format(repo=repo, status=status)) from err
        raise FileNotFoundError(
            f"Repository {repo!r} not found on the hub (or not visible to your token)"
        ) from err
    except (errors.EntryNotFoundError, errors.LocalEntryNotFoundError) as err:
        raise FileNotFoundError(f"{repo}: {err}") from err
    except errors.HfHubHTTPError as err:
        status = _status_of(err)
        if status in (401, 403):
            raise PermissionError(GATED_HINT.format(repo=repo, status=status)) from err
        raise


def download_first(repo: str, sae_id: str, candidates: Sequence[Sequence[str]]) -> Path:
    """Download the first complete file set among `candidates` under `repo/sae_id`; return the local folder."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    tried: list[str] = []
    with hub_errors(repo):
        for files in candidates:
            try:
                paths = [hf_hub_download(repo, f"{sae_id}/{name}" if sae_id else name) for name in files]
            except (EntryNotFoundError, LocalEntryNotFoundError):
                tried.append(" + ".join(files))
                continue
            return Path(paths[0]).parent
    raise FileNotFoundError(
        f"{repo}/{sae_id}: no SAE files found (tried {'; '.join(tried)}). "
        "If you are offline, the files must already be in the Hugging Face cache (HF_HUB_OFFLINE=1)."
    )


def list_files(repo: str) -> list[str]:
    """All file paths in a hub repo (one API call)."""
    from huggingface_hub import list_repo_files

    with hub_errors(repo):
        return list(list_repo_files(repo))


def call_with_hub_errors(repo: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` (e.g. `from_pretrained`) translating gated-repo failures into a clear message."""
    with hub_errors(repo):
        return fn(*args, **kwargs)
