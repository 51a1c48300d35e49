"""Job procedures for examples/demo.py: a pretend render farm.

Workers import these by name ("demo_procs:RenderFrame"), so they live in a module of their own and
not in the script that submits them. Each one prints (into its job's log), reports progress and
sleeps a little, and the frames and chunks leave small text files behind so that every parent can
check that its children really ran first.
"""

from __future__ import annotations

import logging
import os
import time

import jobtree

log = logging.getLogger("demo")

STEP_SECONDS = 0.02


def framePath(outDir: str, frame: int) -> str:
    return os.path.join(outDir, f"frame.{frame:04d}.txt")


def chunkPath(outDir: str, first: int, last: int) -> str:
    return os.path.join(outDir, f"chunk.{first:04d}-{last:04d}.txt")


class RenderFrame(jobtree.JobProc):
    """Pretend to render one frame: a few progress steps, then a one-line "image"."""

    def __init__(self, frame: int, outDir: str) -> None:
        super().__init__()
        self.frame = frame
        self.outDir = outDir

    def run(self) -> None:
        print(f"rendering frame {self.frame} in {self.runningDir}")
        for step in range(1, 5):
            time.sleep(STEP_SECONDS)
            self.setProgress(25 * step)
            self.setStatusLine(f"frame {self.frame}: {25 * step}% of the samples")
        image = "#" * self.frame + "." * (10 - self.frame % 10)
        with open(framePath(self.outDir, self.frame), "w") as f:
            f.write(f"frame {self.frame}: {image}\n")
        print(f"saved {framePath(self.outDir, self.frame)}")


class CollectChunk(jobtree.JobProc):
    """Check that the frames of one chunk exist and join them (its sub-jobs rendered them)."""

    def __init__(self, first: int, last: int, outDir: str) -> None:
        super().__init__()
        if first > last:
            raise ValueError(f"first frame {first} is after last frame {last}")
        self.first = first
        self.last = last
        self.outDir = outDir

    def run(self) -> None:
        lines = []
        for frame in range(self.first, self.last + 1):
            with open(framePath(self.outDir, frame)) as f:  # a missing frame fails the job
                lines.append(f.read())
            self.setProgress(100 * (frame - self.first + 1) / (self.last - self.first + 1))
            time.sleep(STEP_SECONDS)
        with open(chunkPath(self.outDir, self.first, self.last), "w") as f:
            f.writelines(lines)
        print(f"collected frames {self.first}-{self.last}")


class EncodeMovie(jobtree.JobProc):
    """Join every chunk into the "movie" once all chunks are done."""

    def __init__(self, chunks: list[list[int]], outDir: str, movie: str) -> None:
        super().__init__()
        self.chunks = chunks
        self.outDir = outDir
        self.movie = movie

    def run(self) -> None:
        log.warning("encoding %d chunks (this line goes to the job's stderr log)", len(self.chunks))
        with open(os.path.join(self.outDir, self.movie), "w") as out:
            for i, (first, last) in enumerate(self.chunks, 1):
                with open(chunkPath(self.outDir, first, last)) as f:
                    out.write(f.read())
                self.setProgress(100 * i / len(self.chunks))
                self.setStatusLine(f"chunk {i} of {len(self.chunks)}")
                time.sleep(STEP_SECONDS)
        print(f"wrote {os.path.join(self.outDir, self.movie)}")


class Preview(jobtree.JobProc):
    """A quick still submitted with a high priority: it runs before the waiting frames."""

    def __init__(self, frame: int) -> None:
        super().__init__()
        self.frame = frame

    def run(self) -> None:
        print(f"preview of frame {self.frame}")
        time.sleep(STEP_SECONDS)
