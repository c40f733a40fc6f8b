#!/usr/bin/env node
// Extract tarballs exactly as `npm install` does and print what landed on disk.
//
// Usage: node npm_extract.js TARBALL_OR_DIR...
// A directory stands for every *.tgz / *.tar file in it (sorted by name). One JSON object per
// tarball, one per line, on stdout:
//   {"name": "<file name>", "ok": true, "files": {"<path>": {"sha256": "...", "exec": false}},
//    "others": {"<path>": "directory|symlink|other"}, "warnings": ["..."]}
//   {"name": "<file name>", "ok": false, "error": "<message>", ...}
// Paths are relative to the package folder, '/'-separated, as the file system holds them.
//
// The extraction is the installed npm's own: pacote's FileFetcher, whose extract() builds the
// node-tar options npm uses for every package (strip: 1, its filter, its modes). The fetcher's
// manifest is set up front (no `bin`), as the registry fetcher has it before extracting, so
// pacote does not read package.json back and no bin gets an extra executable bit.
'use strict'

const { execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const npmRoot = process.env.GREENROOM_NPM_ROOT ||
  execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim()
const pacote = require(path.join(npmRoot, 'npm', 'node_modules', 'pacote'))

// The usual umask, so a file's executable bits are the ones from its tar header.
process.umask(0o022)

const warnings = []
process.on('log', (level, ...args) => {
  if (level === 'warn' || level === 'error') {
    warnings.push(args.map(String).join(' '))
  }
})

function tarballsIn (args) {
  const found = []
  for (const arg of args) {
    if (fs.statSync(arg).isDirectory()) {
      const names = fs.readdirSync(arg).filter(n => n.endsWith('.tgz') || n.endsWith('.tar'))
      names.sort()
      for (const name of names) {
        found.push(path.join(arg, name))
      }
    } else {
      found.push(arg)
    }
  }
  return found
}

function walk (root, relative, files, others) {
  for (const name of fs.readdirSync(path.join(root, relative))) {
    const rel = relative ? `${relative}/${name}` : name
    const full = path.join(root, rel)
    try {
      const st = fs.lstatSync(full)
      if (st.isFile()) {
        const sha256 = crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex')
        files[rel] = { sha256, exec: (st.mode & 0o111) !== 0 }
      } else if (st.isDirectory()) {
        others[rel] = 'directory'
        walk(root, rel, files, others)
      } else {
        others[rel] = st.isSymbolicLink() ? 'symlink' : 'other'
      }
    } catch {
      // gone already: only after npm crashed or hung here, when its result is the error
    }
  }
}

let onCrash = null
let currentDest = null
const scratchPrefix = path.join(os.tmpdir(), 'npm-extract-')
process.on('uncaughtException', error => {
  // An extraction that crashed goes on in the background and may throw again later, naming
  // its own folder: that is not the current tarball's doing.
  const message = String(error && error.message)
  const earlier = message.includes(scratchPrefix) && !message.includes(currentDest)
  if (onCrash && !earlier) {
    onCrash(new Error(`npm crashes: ${message}`))
  } else if (!earlier) {
    throw error
  }
})

// Some tarballs leave node-tar waiting for data that never comes: the extraction neither ends
// nor fails, and Node would exit with nothing left to do. npm hangs on those; say so.
process.on('beforeExit', () => {
  if (onCrash) {
    onCrash(new Error('npm never finishes extracting'))
  }
})

async function extractOne (tarball, scratch) {
  const dest = fs.mkdtempSync(path.join(scratch, 'x-'))
  currentDest = dest
  const fetcher = new pacote.FileFetcher(`file:${path.resolve(tarball)}`, {})
  fetcher.package = { name: 'x', version: '1.0.0' }
  warnings.length = 0
  const out = { name: path.basename(tarball), ok: true, files: {}, others: {} }
  try {
    // A few names make node-tar throw outside any promise (a NUL byte reaching fs.lstat): npm
    // crashes on them. Count that as npm's error for this tarball and go on with the next.
    await new Promise((resolve, reject) => {
      onCrash = reject
      fetcher.extract(dest).then(resolve, reject)
    })
  } catch (error) {
    out.ok = false
    out.error = String(error && error.message ? error.message : error)
  }
  onCrash = null
  walk(dest, '', out.files, out.others)
  out.warnings = warnings.slice()
  try {
    fs.rmSync(dest, { recursive: true, force: true })
  } catch {
    // a crashed or hung extraction may still be writing here; the scratch folder goes at exit
  }
  return out
}

async function main () {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-extract-'))
  try {
    for (const tarball of tarballsIn(process.argv.slice(2))) {
      const result = await extractOne(tarball, scratch)
      process.stdout.write(JSON.stringify(result) + '\n')
    }
  } finally {
    try {
      fs.rmSync(scratch, { recursive: true, force: true, maxRetries: 3 })
    } catch (error) {
      process.stderr.write(`left ${scratch}: ${error.message}\n`)
    }
  }
}

main().catch(error => {
  process.stderr.write(`${error.stack || error}\n`)
  process.exit(1)
})
