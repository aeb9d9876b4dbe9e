// Shows what a grounded-ip2p node decided (the text of its `info`) on the node itself after a run,
// the way core's Preview Any shows its value: a read-only text box that is not saved with the workflow.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const WIDGET = "gip2p_info";

app.registerExtension({
  name: "grounded_ip2p.ShowInfo",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name.startsWith("GroundedIP2P_")) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, [message]);
      const text = message?.text;
      if (!text || !text.length) return;
      let widget = this.widgets?.find((w) => w.name === WIDGET);
      if (!widget) {
        widget = ComfyWidgets["STRING"](this, WIDGET, ["STRING", { multiline: true }], app).widget;
        widget.serialize = false;
        if (widget.element) widget.element.readOnly = true;
        if (widget.inputEl) widget.inputEl.readOnly = true;
        this.setSize([this.size[0], Math.max(this.size[1], this.computeSize()[1])]);
      }
      widget.value = Array.isArray(text) ? text.join("\n") : String(text);
      this.setDirtyCanvas?.(true, true);
    };
  },
});
