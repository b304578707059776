enum AVRCorePlaceholder {}
