/* pano360 report page: a 360-degree viewer (Photo Sphere Viewer on three.js) with the layers of
 * results.js on the sphere. Written by pano360 (pano360.viz.report); nothing here loads anything
 * from the network.
 *
 * Convention (pano360.geometry.conventions): the viewer's yaw and pitch are pano360's lon and lat,
 * so a point at (lon, lat) is at the centre of the screen when the view is turned to yaw = lon,
 * pitch = lat (yaw right, pitch up). Photo Sphere Viewer's frame puts the direction (yaw, pitch)
 * at (-cos(pitch) sin(yaw), sin(pitch), cos(pitch) cos(yaw)); overlays on the sphere invert that
 * per pixel, so seam and poles need no special case.
 *
 * window.pano360Report is the page's API (used by pano360's browser tests): ready (a promise),
 * viewer, setLayer(name, on), layerNames(), turnTo(lonDeg, latDeg, vFovDeg), lookAt(boxId),
 * camera(), seek(seconds), frame(), chrome(on) (show or hide the navbar and the video's big
 * button), fixationColours(fill, ring).
 */
(function () {
  "use strict";

  const R = window.PANO360_RESULTS;
  const V = window.PANO360_VIEWER;
  const THREE = V.THREE;
  const DEG = Math.PI / 180;
  const COLOURS = { faces: "#ff00ff", detections: "#00e5ff" };
  const LAYER_TITLES = {
    faces: "Face outlines",
    detections: "Detection outlines",
    blur: "Blur faces",
    saliency: "Saliency heat map",
    fixations: "Fixations",
  };
  // Overlays sit inside Photo Sphere Viewer's sphere (radius 10), around the camera at its centre.
  const OVERLAY_RADIUS = 5;
  const MIN_FOV = 5;
  const MAX_FOV = 120;

  const state = { frame: -1, visible: {}, objects: {}, turn: null, textures: [], video: null };
  const api = {
    ready: null,
    viewer: null,
    setLayer,
    layerNames: () => Object.keys(state.visible),
    turnTo,
    lookAt,
    camera,
    seek,
    frame: () => state.frame,
    rendered,
    chrome,
    fixationColours,
  };
  window.pano360Report = api;

  function showError(message) {
    const box = document.getElementById("error");
    box.textContent = message;
    box.hidden = false;
    console.error(`pano360 report: ${message}`);
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.appendChild(s);
    });
  }

  // Media URLs. A page opened from file:// cannot make WebGL textures from files next to it
  // (each file is its own origin), so the media are embedded in media.js and turned into blob:
  // URLs, which belong to the page. Reports too large to embed are read from the folder, which
  // works when it is served (pano360 report ... --serve).
  async function mediaResolver() {
    if (!R.embedded) {
      if (location.protocol === "file:") {
        throw new Error(
          "This report's media are too large to embed for a page opened from disk. Serve the " +
            "folder instead: pano360 report ... --serve (or python -m http.server in it)."
        );
      }
      return async (path) => path;
    }
    await loadScript("media.js");
    const urls = {};
    return (path) => {
      if (!urls[path]) {
        const m = window.PANO360_MEDIA[path];
        if (!m) throw new Error(`media.js has no ${path}`);
        urls[path] = fetch(`data:${m.mime};base64,${m.base64}`)
          .then((r) => r.blob())
          .then((b) => URL.createObjectURL(b));
      }
      return urls[path];
    };
  }

  async function loadImage(url) {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  }

  // An ERP texture sampled per pixel: no mipmaps (the seam's jump in u would pick a coarse
  // level), columns wrap (the seam), rows clamp (the poles).
  function erpTexture(image) {
    const t = new THREE.Texture(image);
    t.generateMipmaps = false;
    t.minFilter = THREE.LinearFilter;
    t.magFilter = THREE.LinearFilter;
    t.wrapS = THREE.RepeatWrapping;
    t.wrapT = THREE.ClampToEdgeWrapping;
    t.needsUpdate = true;
    return t;
  }

  const OVERLAY_VERTEX = `
varying vec3 vDir;
void main() {
  vDir = position;
  gl_Position = projectionMatrix * modelViewMatrix * vec4(position, 1.0);
}`;
  const OVERLAY_FRAGMENT = `
uniform sampler2D map;
uniform sampler2D lut;
uniform bool useLut;
uniform float opacity;
varying vec3 vDir;
const float PI = 3.141592653589793;
void main() {
  vec3 d = normalize(vDir);
  float lon = atan(-d.x, d.z);               // the viewer's yaw
  float lat = asin(clamp(d.y, -1.0, 1.0));   // its pitch
  // ERP texture coordinates: u from the left edge (lon = -pi), v from the bottom (lat = -pi/2).
  vec2 uv = vec2(lon / (2.0 * PI) + 0.5, lat / PI + 0.5);
  vec4 c = texture2D(map, uv);               // premultiplied RGBA (blur) or a gray map
  if (useLut) {
    c = texture2D(lut, vec2((c.r * 255.0 + 0.5) / 256.0, 0.5));
    c.rgb *= c.a;
  }
  gl_FragColor = c * opacity;
}`;

  function overlaySphere(viewer, texture, lut, order) {
    const material = new THREE.ShaderMaterial({
      uniforms: {
        map: { value: texture },
        lut: { value: lut },
        useLut: { value: lut !== null },
        opacity: { value: 1.0 },
      },
      vertexShader: OVERLAY_VERTEX,
      fragmentShader: OVERLAY_FRAGMENT,
      transparent: true,
      premultipliedAlpha: true,
      depthTest: false,
      depthWrite: false,
      side: THREE.BackSide,
    });
    const mesh = new THREE.Mesh(new THREE.SphereGeometry(OVERLAY_RADIUS, 64, 32), material);
    mesh.renderOrder = order;
    mesh.frustumCulled = false;
    mesh.visible = false;
    viewer.renderer.addObject(mesh);
    return mesh;
  }

  function colormapTexture(colormap) {
    const data = new Uint8Array(colormap.length * 4);
    colormap.forEach((c, i) => data.set(c, 4 * i));
    const t = new THREE.DataTexture(data, colormap.length, 1, THREE.RGBAFormat);
    t.minFilter = THREE.LinearFilter;
    t.magFilter = THREE.LinearFilter;
    t.needsUpdate = true;
    return t;
  }

  const POINT_VERTEX = `
uniform float size;
void main() {
  gl_PointSize = size;
  gl_Position = projectionMatrix * modelViewMatrix * vec4(position, 1.0);
}`;
  const POINT_FRAGMENT = `
uniform vec3 fill;
uniform vec3 ring;
void main() {
  vec2 p = gl_PointCoord * 2.0 - 1.0;
  float r = dot(p, p);
  if (r > 1.0) discard;
  gl_FragColor = vec4(r > 0.4 ? ring : fill, 1.0);
}`;

  function fixationPoints(viewer, points) {
    const positions = new Float32Array(points.length * 3);
    const v = new THREE.Vector3();
    points.forEach(([lon, lat], i) => {
      viewer.dataHelper.sphericalCoordsToVector3({ yaw: lon * DEG, pitch: lat * DEG }, v, 4);
      positions.set([v.x, v.y, v.z], 3 * i);
    });
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.BufferAttribute(positions, 3));
    const material = new THREE.ShaderMaterial({
      uniforms: {
        size: { value: 9 * (window.devicePixelRatio || 1) },
        fill: { value: new THREE.Color(0.2, 1.0, 0.2) },
        ring: { value: new THREE.Color(0.0, 0.0, 0.0) },
      },
      vertexShader: POINT_VERTEX,
      fragmentShader: POINT_FRAGMENT,
      depthTest: false,
      depthWrite: false,
      transparent: true,
    });
    const mesh = new THREE.Points(geometry, material);
    mesh.renderOrder = 3;
    mesh.frustumCulled = false;
    mesh.visible = false;
    viewer.renderer.addObject(mesh);
    return mesh;
  }

  function boxText(box) {
    const score = box.score === null ? "" : ` ${box.score.toFixed(3)}`;
    return `${box.label}${score}`;
  }

  function rendered() {
    const viewer = api.viewer;
    return new Promise((resolve) => {
      viewer.addEventListener("render", () => requestAnimationFrame(() => resolve()), {
        once: true,
      });
      viewer.needsUpdate();
    });
  }

  function zoomLevel(vFov) {
    const fov = Math.min(Math.max(vFov, MIN_FOV), MAX_FOV);
    return ((MAX_FOV - fov) / (MAX_FOV - MIN_FOV)) * 100;
  }

  // Turn the view at once (degrees); resolves once a frame has been drawn.
  function turnTo(lonDeg, latDeg, vFovDeg) {
    const viewer = api.viewer;
    viewer.stopAll();
    viewer.rotate({ yaw: lonDeg * DEG, pitch: latDeg * DEG });
    if (vFovDeg !== undefined) viewer.zoom(zoomLevel(vFovDeg));
    return rendered();
  }

  // Animate the view to a box, zoomed so it fills about a third of the height.
  function lookAt(id) {
    const viewer = api.viewer;
    const box = R.boxes.find((b) => b.id === id);
    const [lon, lat, fovX, fovY] = box.rbfov;
    const aspect = viewer.state.aspect;
    const vFovX = 2 * Math.atan(Math.tan((fovX * DEG) / 2) / aspect) / DEG;
    document.querySelectorAll("#list li").forEach((li) => {
      li.classList.toggle("current", li.dataset.id === id);
    });
    state.turn = Promise.resolve(
      viewer.animate({
        yaw: lon * DEG,
        pitch: lat * DEG,
        zoom: zoomLevel(3 * Math.max(fovY, vFovX)),
        speed: 700,
      })
    ).then(rendered);
    api.turning = state.turn;
    return state.turn;
  }

  function camera() {
    const viewer = api.viewer;
    const p = viewer.getPosition();
    return {
      yaw: p.yaw,
      pitch: p.pitch,
      vFov: viewer.state.vFov,
      hFov: viewer.state.hFov,
      width: viewer.state.size.width,
      height: viewer.state.size.height,
    };
  }

  // Colours of the fixation points, [r, g, b] in [0, 1]: their fill and the ring around it.
  function fixationColours(fill, ring) {
    const u = state.objects.fixations.material.uniforms;
    u.fill.value.setRGB(...fill);
    u.ring.value.setRGB(...ring);
    return rendered();
  }

  function chrome(on) {
    const viewer = api.viewer;
    if (on) viewer.navbar.show();
    else viewer.navbar.hide();
    document.body.classList.toggle("pano360-clean", !on);
    return rendered();
  }

  function setLayer(name, on) {
    if (!(name in state.visible)) throw new Error(`no layer ${name}`);
    state.visible[name] = Boolean(on);
    const input = document.querySelector(`#layers input[data-layer="${name}"]`);
    if (input) input.checked = Boolean(on);
    const viewer = api.viewer;
    if (name === "faces" || name === "detections") {
      const markers = viewer.getPlugin(V.markers.MarkersPlugin);
      R.boxes
        .filter((b) => b.layer === name)
        .forEach((b) => (on ? markers.showMarker(b.id) : markers.hideMarker(b.id)));
    } else {
      state.objects[name].visible = Boolean(on);
    }
    return rendered();
  }

  // Video: the saliency map and the fixations of the frame on screen.
  function showTime(t) {
    const sal = R.saliency;
    if (sal && state.textures.length > 1) {
      const fps = R.media.fps || sal.fps;
      // Map k shows from k / rate on; 1% of a video frame of slack for rounded frame times.
      const k = Math.floor(t * sal.fps + (0.01 * sal.fps) / fps);
      const frame = Math.min(Math.max(k, 0), state.textures.length - 1);
      if (frame !== state.frame) {
        const tex = state.objects.saliency.material.uniforms.map.value;
        tex.image = state.textures[frame];
        tex.needsUpdate = true;
        state.frame = frame;
      }
    }
    const fix = state.objects.fixations;
    if (fix && state.fixationTimes) {
      const times = state.fixationTimes;
      const window_s = R.fixations.window_s;
      const first = times.findIndex((s) => s > t - window_s);
      let last = times.findIndex((s) => s > t);
      if (last < 0) last = times.length;
      const start = first < 0 ? times.length : first;
      fix.geometry.setDrawRange(start, Math.max(0, last - start));
    }
  }

  function seek(seconds) {
    const video = state.video;
    return new Promise((resolve) => {
      video.addEventListener(
        "seeked",
        () => {
          showTime(video.currentTime);
          rendered().then(resolve);
        },
        { once: true }
      );
      video.currentTime = seconds;
    });
  }

  function addLayerControls() {
    const box = document.getElementById("layers");
    for (const name of Object.keys(state.visible)) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.dataset.layer = name;
      input.checked = state.visible[name];
      input.addEventListener("change", () => setLayer(name, input.checked));
      label.appendChild(input);
      if (COLOURS[name]) {
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = COLOURS[name];
        label.appendChild(swatch);
      }
      label.appendChild(document.createTextNode(` ${LAYER_TITLES[name]}`));
      box.appendChild(label);
      if (name === "saliency") {
        const slider = document.createElement("input");
        slider.type = "range";
        slider.min = "0";
        slider.max = "1";
        slider.step = "0.05";
        slider.value = "1";
        slider.title = "Saliency opacity";
        slider.setAttribute("aria-label", "Saliency opacity");
        slider.addEventListener("input", () => {
          state.objects.saliency.material.uniforms.opacity.value = Number(slider.value);
          api.viewer.needsUpdate();
        });
        box.appendChild(slider);
      }
    }
  }

  function fillList() {
    if (!R.boxes.length) return;
    document.getElementById("list-section").hidden = false;
    const list = document.getElementById("list");
    for (const box of R.boxes) {
      const li = document.createElement("li");
      li.dataset.id = box.id;
      const [lon, lat] = box.rbfov;
      li.textContent = `${boxText(box)} (${lon.toFixed(1)}°, ${lat.toFixed(1)}°)`;
      li.style.borderLeft = `4px solid ${COLOURS[box.layer]}`;
      li.tabIndex = 0;
      li.addEventListener("click", () => lookAt(box.id));
      li.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          lookAt(box.id);
        }
      });
      list.appendChild(li);
    }
  }

  function describe() {
    const m = R.media;
    const parts = [`${m.kind} ${m.size[0]}×${m.size[1]}`];
    const count = (layer) => R.boxes.filter((b) => b.layer === layer).length;
    if (count("faces")) parts.push(`${count("faces")} face(s)`);
    if (count("detections")) parts.push(`${count("detections")} detection(s)`);
    if (R.saliency) parts.push(`saliency (${R.saliency.frames.length} map(s))`);
    if (R.fixations) parts.push(`${R.fixations.points.length} fixation(s)`);
    document.getElementById("meta").textContent = parts.join(" · ");
  }

  async function start() {
    const resolve = await mediaResolver();
    const video = R.media.kind === "video";
    const mediaUrl = await resolve(R.media.file);
    const plugins = [[V.markers.MarkersPlugin, {}]];
    let panorama = mediaUrl;
    let adapter = [V.core.EquirectangularAdapter, { shader: true, useXmpData: false }];
    let navbar = ["zoom", "move", "caption", "fullscreen"];
    if (video) {
      const element = document.createElement("video");
      element.src = mediaUrl;
      element.muted = true;
      element.loop = true;
      element.playsInline = true;
      element.preload = "auto";
      state.video = element;
      panorama = { source: element };
      adapter = [
        V.videoAdapter.EquirectangularVideoAdapter,
        { shader: true, autoplay: false, muted: true },
      ];
      plugins.push([V.video.VideoPlugin, { progressbar: true, bigbutton: true }]);
      navbar = ["videoPlay", "videoVolume", "videoTime", "zoom", "move", "caption", "fullscreen"];
    }
    const viewer = new V.core.Viewer({
      container: document.getElementById("viewer"),
      panorama,
      adapter,
      plugins,
      navbar,
      caption: R.title,
      minFov: MIN_FOV,
      maxFov: MAX_FOV,
      defaultZoomLvl: zoomLevel(75),
      defaultYaw: 0,
      defaultPitch: 0,
      mousewheelCtrlKey: false,
      loadingTxt: "Loading…",
    });
    api.viewer = viewer;
    await new Promise((ok, fail) => {
      viewer.addEventListener("ready", ok, { once: true });
      viewer.addEventListener("panorama-error", (e) => fail(e.error || new Error("panorama")), {
        once: true,
      });
    });

    const markers = viewer.getPlugin(V.markers.MarkersPlugin);
    for (const layer of ["faces", "detections"]) {
      const boxes = R.boxes.filter((b) => b.layer === layer);
      if (!boxes.length) continue;
      state.visible[layer] = true;
      for (const box of boxes) {
        markers.addMarker({
          id: box.id,
          // The corners joined by straight lines: the edges are great circles, straight in any
          // pinhole view (the viewer cuts them where they pass behind it).
          polygon: box.corners.map(([lon, lat]) => [lon * DEG, lat * DEG]),
          svgStyle: {
            fill: "transparent",
            stroke: COLOURS[layer],
            strokeWidth: "3px",
            strokeLinejoin: "round",
          },
          tooltip: { content: boxText(box), position: "top center" },
          data: { id: box.id },
        });
      }
    }
    if (R.blur) {
      const tex = erpTexture(await loadImage(await resolve(R.blur.file)));
      state.objects.blur = overlaySphere(viewer, tex, null, 1);
      state.visible.blur = false;
    }
    if (R.saliency) {
      const frames = R.saliency.frames;
      state.textures = await Promise.all(frames.map(async (f) => loadImage(await resolve(f))));
      const tex = erpTexture(state.textures[0]);
      state.frame = 0;
      const lut = colormapTexture(R.saliency.colormap);
      state.objects.saliency = overlaySphere(viewer, tex, lut, 2);
      state.objects.saliency.visible = true;
      state.visible.saliency = true;
    }
    if (R.fixations) {
      let points = R.fixations.points;
      if (video && points.length && points[0].length > 2) {
        points = points.slice().sort((a, b) => a[2] - b[2]);
        state.fixationTimes = points.map((p) => p[2]);
      }
      state.objects.fixations = fixationPoints(viewer, points);
      state.objects.fixations.visible = true;
      state.visible.fixations = true;
    }
    if (video) {
      const element = state.video;
      const onFrame = (now, meta) => {
        showTime(meta.mediaTime);
        viewer.needsUpdate();
        element.requestVideoFrameCallback(onFrame);
      };
      if (element.requestVideoFrameCallback) element.requestVideoFrameCallback(onFrame);
      element.addEventListener("seeked", () => {
        showTime(element.currentTime);
        viewer.needsUpdate();
      });
      viewer.addEventListener("before-render", () => {
        if (!element.requestVideoFrameCallback) showTime(element.currentTime);
      });
      // Draw every frame only while the video plays (the adapter would always do).
      const continuous = () => viewer.needsContinuousUpdate(!element.paused);
      element.addEventListener("play", continuous);
      element.addEventListener("pause", continuous);
      continuous();
      showTime(0);
    }
    addLayerControls();
    fillList();
    describe();
    await rendered();
  }

  api.ready = start().catch((e) => {
    showError(e && e.message ? e.message : String(e));
    throw e;
  });
})();
